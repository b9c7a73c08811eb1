package specs_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/universe"
)

// namesKillmails are n real killmails as a JSON array, and as stored.
func namesKillmails(from, n int) ([]byte, []killmail.Killmail) {
	kms := fixture.Killmails()[from : from+n]
	raw := make([]json.RawMessage, n)
	for i, k := range kms {
		raw[i] = k.JSON
	}
	b, _ := json.Marshal(raw)
	return b, kms
}

// addedKeys are the fields killfeed adds beside ids.
var addedKeys = map[string]bool{
	"character_name": true, "corporation_name": true, "corporation_ticker": true, "alliance_name": true,
	"alliance_ticker": true, "faction_name": true, "ship_type_name": true, "ship_group_id": true,
	"ship_group_name": true, "weapon_type_name": true, "solar_system_name": true, "constellation_id": true,
	"region_id": true, "region_name": true, "security": true,
}

// expectNamed checks a delivered killmail against the stored one by an
// independent evaluation: the stored fields untouched, and beside each id
// the name the fake ESI (every id known: "Character N", "Corporation N"
// [CN mod 1e5], "Alliance N" [AN mod 1e5]) or the static data gives. With
// esiNames false, the ESI names must be absent (and the static ones there).
func expectNamed(stored []byte, delivered json.RawMessage, esiNames bool) {
	GinkgoHelper()
	expectNamedG(Default, stored, delivered, esiNames)
}

// expectNamedG is expectNamed inside an Eventually.
func expectNamedG(g Gomega, stored []byte, delivered json.RawMessage, esiNames bool) {
	GinkgoHelper()
	var s, d map[string]any
	g.Expect(json.Unmarshal(stored, &s)).To(Succeed())
	g.Expect(json.Unmarshal(delivered, &d)).To(Succeed())
	u := universe.Default()
	num := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	strip := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if !addedKeys[k] {
				out[k] = v
			}
		}
		return out
	}
	checkParty := func(sp, dp map[string]any, victim bool) {
		g.Expect(strip(dp)).To(Equal(sp), "stored fields changed")
		want := map[string]any{}
		if id := num(sp["character_id"]); id > 0 && esiNames {
			want["character_name"] = "Character " + strconv.FormatInt(id, 10)
		}
		if id := num(sp["corporation_id"]); id > 0 && esiNames {
			want["corporation_name"] = "Corporation " + strconv.FormatInt(id, 10)
			want["corporation_ticker"] = "C" + strconv.FormatInt(id%100000, 10)
		}
		if id := num(sp["alliance_id"]); id > 0 && esiNames {
			want["alliance_name"] = "Alliance " + strconv.FormatInt(id, 10)
			want["alliance_ticker"] = "A" + strconv.FormatInt(id%100000, 10)
		}
		if f, ok := u.Faction(num(sp["faction_id"])); ok {
			want["faction_name"] = f.Name
		}
		if t, ok := u.Type(num(sp["ship_type_id"])); ok && num(sp["ship_type_id"]) > 0 {
			want["ship_type_name"] = t.Name
			if victim {
				want["ship_group_id"] = float64(t.GroupID)
				want["ship_group_name"] = t.GroupName
			}
		}
		if t, ok := u.Type(num(sp["weapon_type_id"])); ok && num(sp["weapon_type_id"]) > 0 {
			want["weapon_type_name"] = t.Name
		}
		got := map[string]any{}
		for k, v := range dp {
			if addedKeys[k] {
				got[k] = v
			}
		}
		g.Expect(got).To(Equal(want))
	}
	sys, ok := u.System(num(s["solar_system_id"]))
	g.Expect(ok).To(BeTrue())
	g.Expect(d).To(HaveKeyWithValue("solar_system_name", sys.Name))
	g.Expect(d).To(HaveKeyWithValue("region_name", sys.RegionName))
	g.Expect(d).To(HaveKeyWithValue("region_id", float64(sys.RegionID)))
	g.Expect(d).To(HaveKeyWithValue("constellation_id", float64(sys.ConstellationID)))
	g.Expect(d).To(HaveKeyWithValue("security", sys.Security))
	checkParty(s["victim"].(map[string]any), d["victim"].(map[string]any), true)
	sa, da := s["attackers"].([]any), d["attackers"].([]any)
	g.Expect(da).To(HaveLen(len(sa)))
	for i := range sa {
		checkParty(sa[i].(map[string]any), da[i].(map[string]any), false)
	}
	top := maps.Clone(d)
	delete(top, "victim")
	delete(top, "attackers")
	delete(s, "victim")
	delete(s, "attackers")
	g.Expect(strip(top)).To(Equal(s))
}

func namesApp(esi *fakeesi.Server, wait time.Duration) *app.App {
	GinkgoHelper()
	return startKillfeed(app.Config{Names: app.NamesConfig{ESI: true, URL: esi.URL, Wait: wait, Contact: "ops@example.org"}})
}

func wsRead(ctx context.Context, c *websocket.Conn) []byte {
	GinkgoHelper()
	_, b, err := c.Read(ctx)
	Expect(err).NotTo(HaveOccurred())
	return b
}

var _ = Describe("Names beside ids", func() {
	It("are in every killmail of the native API by default, in the compatibility endpoints on request, and never in the stored form", func(ctx SpecContext) {
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		a := namesApp(esi, 10*time.Second)
		base := a.URL()

		native := dialWS(ctx, base, "/api/ws")
		nativeRaw := dialWS(ctx, base, "/api/ws")
		zkill := dialWS(ctx, base, "/websocket/")
		zkillNamed := dialWS(ctx, base, "/websocket/?names=true")
		for c, f := range map[*websocket.Conn]string{
			native: `{"type":"subscribe","all":true}`, nativeRaw: `{"type":"subscribe","all":true,"names":false}`,
			zkill: `{"action":"sub","channel":"killstream"}`, zkillNamed: `{"action":"sub","channel":"killstream"}`,
		} {
			Expect(c.Write(ctx, websocket.MessageText, []byte(f))).To(Succeed())
		}
		Expect(string(wsRead(ctx, native))).To(ContainSubstring(`"subscribed"`))
		Expect(string(wsRead(ctx, nativeRaw))).To(ContainSubstring(`"subscribed"`))
		// The zKillboard protocol acknowledges nothing: a refused frame
		// answered means the sub before it was carried out.
		for _, c := range []*websocket.Conn{zkill, zkillNamed} {
			Expect(c.Write(ctx, websocket.MessageText, []byte(`{"action":"sync"}`))).To(Succeed())
			Expect(string(wsRead(ctx, c))).To(ContainSubstring(`"error"`))
		}
		// RedisQ queues exist from their first listen.
		for _, q := range []string{"plain", "named"} {
			status, _ := listenServed(ctx, listenURL(base, "/listen.php", q, "ttw", "1"))
			Expect(status).To(Equal(http.StatusOK))
		}

		body, kms := namesKillmails(0, 4)
		postKillmails(ctx, base, body)

		for i, k := range kms {
			var f struct {
				Killmail json.RawMessage `json:"killmail"`
			}
			Expect(json.Unmarshal(wsRead(ctx, native), &f)).To(Succeed())
			expectNamed(k.JSON, f.Killmail, true) // the live push already carries the names
			Expect(json.Unmarshal(wsRead(ctx, nativeRaw), &f)).To(Succeed())
			Expect(f.Killmail).To(MatchJSON(k.JSON), "killmail %d", i)
			Expect(wsRead(ctx, zkill)).To(MatchJSON(k.JSON))
			expectNamed(k.JSON, wsRead(ctx, zkillNamed), true)
		}

		var named, raw pollAnswer
		get(ctx, pollURL(base, "/api/killfeed", "n", nil, "all", "true")).JSON(&named)
		get(ctx, pollURL(base, "/api/killfeed", "r", nil, "all", "true", "names", "false")).JSON(&raw)
		Expect(named.Events).To(HaveLen(len(kms)))
		Expect(raw.Events).To(HaveLen(len(kms)))
		for i, k := range kms {
			expectNamed(k.JSON, named.Events[i].Killmail, true)
			Expect(raw.Events[i].Killmail).To(MatchJSON(k.JSON))
		}
		r := get(ctx, pollURL(base, "/api/killfeed/next", "nx", nil, "all", "true"))
		var one struct {
			Killmail json.RawMessage `json:"killmail"`
		}
		r.JSON(&one)
		expectNamed(kms[0].JSON, one.Killmail, true)
		Expect(get(ctx, pollURL(base, "/api/killfeed", "bad", nil, "all", "true", "names", "maybe")).Error()).
			To(HavePrefix("names:"))

		_, plain, plainRaw := listen(ctx, listenURL(base, "/listen.php", "plain", "ttw", "1"))
		Expect(string(plainRaw)).NotTo(ContainSubstring("character_name"))
		Expect(plain.Package).NotTo(BeNil())
		_, _, namedRaw := listen(ctx, listenURL(base, "/listen.php", "named", "ttw", "1", "names", "true"))
		var pkg struct {
			Package struct {
				Killmail json.RawMessage `json:"killmail"`
			} `json:"package"`
		}
		Expect(json.Unmarshal(namedRaw, &pkg)).To(Succeed())
		var withZKB map[string]any
		Expect(json.Unmarshal(kms[0].JSON, &withZKB)).To(Succeed())
		delete(withZKB, "zkb") // RedisQ moves zkb out of the killmail
		stored, _ := json.Marshal(withZKB)
		expectNamed(stored, pkg.Package.Killmail, true)

		// ESI was asked once per id, with killfeed's User-Agent and the contact.
		for _, k := range kms {
			w := partiesOf(k.JSON)
			for _, id := range w {
				Expect(esi.Asked(id)).To(Equal(1), "id %d", id)
			}
		}
		Expect(esi.UserAgents()).To(ConsistOf(ContainSubstring("ops@example.org")))
	}, SpecTimeout(60*time.Second))

	It("do not hold a killmail longer than the wait when ESI is slow or down, and appear in later reads", func(ctx SpecContext) {
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		esi.Hold()
		a := namesApp(esi, 200*time.Millisecond)
		base := a.URL()
		native := dialWS(ctx, base, "/api/ws")
		Expect(native.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true}`))).To(Succeed())
		wsRead(ctx, native)

		body, kms := namesKillmails(10, 2)
		ids := postKillmails(ctx, base, body) // answered while ESI still holds every lookup
		Expect(esi.InFlight()).To(BeNumerically(">", 0))
		for _, k := range kms {
			var f struct {
				Killmail json.RawMessage `json:"killmail"`
			}
			Expect(json.Unmarshal(wsRead(ctx, native), &f)).To(Succeed())
			expectNamed(k.JSON, f.Killmail, false) // static names only
		}
		var p pollAnswer
		get(ctx, pollURL(base, "/api/killfeed", "early", nil, "all", "true")).JSON(&p)
		Expect(p.Events).To(HaveLen(2))
		expectNamed(kms[0].JSON, p.Events[0].Killmail, false)

		esi.Release()
		// Every later read carries them: a since replay, a new client's poll.
		Eventually(func(g Gomega) {
			c := dialWS(ctx, base, "/api/ws")
			g.Expect(c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true,"since":0}`))).To(Succeed())
			wsRead(ctx, c)
			for _, k := range kms {
				var f struct {
					Killmail json.RawMessage `json:"killmail"`
				}
				g.Expect(json.Unmarshal(wsRead(ctx, c), &f)).To(Succeed())
				g.Expect(string(f.Killmail)).To(ContainSubstring(`"character_name"`))
				expectNamedG(g, k.JSON, f.Killmail, true)
			}
			_ = c.CloseNow()
		}).WithContext(ctx).Should(Succeed())
		var later pollAnswer
		get(ctx, pollURL(base, "/api/killfeed", "late", nil, "all", "true")).JSON(&later)
		Expect(later.IDs()).To(Equal(ids))
		expectNamed(kms[1].JSON, later.Events[1].Killmail, true)

		// Down (503): delivered without the names, which appear once it is back.
		esi.Fail(http.StatusServiceUnavailable, "")
		body, kms = namesKillmails(20, 1)
		postKillmails(ctx, base, body)
		var f struct {
			Killmail json.RawMessage `json:"killmail"`
		}
		Expect(json.Unmarshal(wsRead(ctx, native), &f)).To(Succeed())
		expectNamed(kms[0].JSON, f.Killmail, false)
		esi.Fail(0, "")
		Eventually(func(g Gomega) {
			var p pollAnswer
			get(ctx, pollURL(base, "/api/killfeed", "after-outage-"+strconv.FormatInt(time.Now().UnixNano(), 10), nil, "all", "true")).JSON(&p)
			g.Expect(p.Events).NotTo(BeEmpty())
			last := p.Events[len(p.Events)-1].Killmail
			g.Expect(string(last)).To(ContainSubstring(`"corporation_ticker"`))
			expectNamedG(g, kms[0].JSON, last, true)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	}, SpecTimeout(90*time.Second))

	It("asks ESI nothing it already knew after the binary is killed and restarted on the same data", func(ctx SpecContext) {
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		dir := GinkgoT().TempDir()
		args := []string{"--storage", "disk", "--data-dir", dir, "--r2z2=false", "--names=true", "--esi-url", esi.URL}
		p := startProcess(nil, args...)
		body, kms := namesKillmails(30, 5)
		postKillmails(ctx, p.URL, body)
		var first pollAnswer
		get(ctx, pollURL(p.URL, "/api/killfeed", "a", nil, "all", "true")).JSON(&first)
		for i, k := range kms {
			expectNamed(k.JSON, first.Events[i].Killmail, true)
		}
		Expect(esi.Calls("")).To(BeNumerically(">", 0))
		Expect(p.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(p.exited).Should(BeClosed())

		esi.Reset()
		p = startProcess(nil, args...)
		var again pollAnswer
		get(ctx, pollURL(p.URL, "/api/killfeed", "b", nil, "all", "true")).JSON(&again)
		Expect(again.Events).To(HaveLen(len(kms)))
		for i, k := range kms {
			expectNamed(k.JSON, again.Events[i].Killmail, true)
		}
		r := post(ctx, p.URL+"/api/killmails", body) // duplicates: looked up (in the cache) before the store dedupes
		Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
		Expect(string(r.Body)).NotTo(ContainSubstring(`"duplicate":false`))
		Expect(esi.Calls("")).To(BeZero())
		metricsBody := string(get(ctx, p.URL+"/metrics").Body)
		Expect(metricsBody).To(MatchRegexp(`killfeed_names_lookups_total\{result="hit"\} [1-9]`))
		Expect(metricsBody).To(ContainSubstring(`killfeed_names_esi_requests_total{endpoint="universe_names",outcome="ok"} 0`))
		Expect(metricsBody).To(MatchRegexp(`killfeed_names_cache_entries [1-9]`))
	}, SpecTimeout(90*time.Second))
})

// partiesOf lists the character, corporation and alliance ids of a killmail.
func partiesOf(km []byte) []int64 {
	var v struct {
		Victim    map[string]any   `json:"victim"`
		Attackers []map[string]any `json:"attackers"`
	}
	_ = json.Unmarshal(km, &v)
	seen := map[int64]bool{}
	var out []int64
	for _, p := range append([]map[string]any{v.Victim}, v.Attackers...) {
		for _, k := range []string{"character_id", "corporation_id", "alliance_id"} {
			if f, ok := p[k].(float64); ok && f > 0 && !seen[int64(f)] {
				seen[int64(f)] = true
				out = append(out, int64(f))
			}
		}
	}
	return out
}

var _ = Describe("Names through an edge", func() {
	It("are the core's: an edge serves its core's rendering, and a name the core learnt later reaches every read through the edge", func(ctx SpecContext) {
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		esi.Hold()
		remote := freeAddr()
		core := startCoreProcess(GinkgoT().TempDir(), remote, "--names=true", "--esi-url", esi.URL, "--names-wait", "200ms")
		edge := startEdgeProcess(ctx, remote)

		// A live subscriber on the edge, following everything.
		live := dialWS(ctx, edge.URL, "/api/ws")
		Expect(live.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true}`))).To(Succeed())
		wsRead(ctx, live)
		body, kms := namesKillmails(40, 2)
		postKillmails(ctx, core.URL, body) // ESI holds every lookup: stored with the static names
		for _, k := range kms {
			var f struct {
				Killmail json.RawMessage `json:"killmail"`
			}
			Expect(json.Unmarshal(wsRead(ctx, live), &f)).To(Succeed())
			expectNamed(k.JSON, f.Killmail, false)
		}

		esi.Release()
		// The edge's tail holds the first rendering; a since replay on the
		// edge and a poll through it get what the core serves now.
		Eventually(func(g Gomega) {
			c := dialWS(ctx, edge.URL, "/api/ws")
			g.Expect(c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true,"since":0}`))).To(Succeed())
			wsRead(ctx, c)
			for _, k := range kms {
				var f struct {
					Killmail json.RawMessage `json:"killmail"`
				}
				g.Expect(json.Unmarshal(wsRead(ctx, c), &f)).To(Succeed())
				expectNamedG(g, k.JSON, f.Killmail, true)
			}
			_ = c.CloseNow()
		}).WithContext(ctx).Should(Succeed())
		var viaEdge, fromCore pollAnswer
		get(ctx, pollURL(edge.URL, "/api/killfeed", "e", nil, "all", "true")).JSON(&viaEdge)
		get(ctx, pollURL(core.URL, "/api/killfeed", "c", nil, "all", "true")).JSON(&fromCore)
		Expect(viaEdge.Events).To(HaveLen(len(kms)))
		for i := range kms {
			Expect(viaEdge.Events[i].Killmail).To(MatchJSON(fromCore.Events[i].Killmail))
			expectNamed(kms[i].JSON, viaEdge.Events[i].Killmail, true)
		}
		var raw pollAnswer
		get(ctx, pollURL(edge.URL, "/api/killfeed", "er", nil, "all", "true", "names", "false")).JSON(&raw)
		for i, k := range kms {
			Expect(raw.Events[i].Killmail).To(MatchJSON(k.JSON))
		}
	}, SpecTimeout(90*time.Second))
})
