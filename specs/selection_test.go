package specs_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/transport"
)

// The specs of who, what and how much: every interface's delivery is
// compared with a plain evaluation, written here, of the same killmails.

// selParty is one party of a killmail, as the evaluator reads it.
type selParty struct {
	Character   int64 `json:"character_id"`
	Corporation int64 `json:"corporation_id"`
	Alliance    int64 `json:"alliance_id"`
	Faction     int64 `json:"faction_id"`
	Ship        int64 `json:"ship_type_id"`
}

type selKillmail struct {
	ID        int64      `json:"killmail_id"`
	System    int64      `json:"solar_system_id"`
	Victim    selParty   `json:"victim"`
	Attackers []selParty `json:"attackers"`
	ZKB       struct {
		TotalValue float64  `json:"totalValue"`
		Labels     []string `json:"labels"`
		LocationID int64    `json:"locationID"`
	} `json:"zkb"`
	raw []byte
}

// selWant is one selection as the evaluator applies it.
type selWant struct {
	name                                                 string
	systems                                              []int64
	characters, corporations, alliances, factions, ships []int64
	groups                                               []int64
	side                                                 string
	labels                                               []string
	minValue                                             float64
	hasMin                                               bool
	locations                                            []int64
}

// shipGroups maps ship type ids to groups, read from the embedded static
// data file itself.
func shipGroups() map[int64]int64 {
	GinkgoHelper()
	f, err := os.Open("../universe/types.csv.gz")
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	zr, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	rows, err := csv.NewReader(zr).ReadAll()
	Expect(err).NotTo(HaveOccurred())
	out := make(map[int64]int64, len(rows))
	for _, r := range rows[1:] {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		g, _ := strconv.ParseInt(r[2], 10, 64)
		out[id] = g
	}
	return out
}

func (w selWant) matches(k selKillmail, groups map[int64]int64) bool {
	if len(w.systems) > 0 && !slices.Contains(w.systems, k.System) {
		return false
	}
	parties := []selParty{}
	if w.side != "attacker" {
		parties = append(parties, k.Victim)
	}
	if w.side != "victim" {
		parties = append(parties, k.Attackers...)
	}
	some := func(ids []int64, get func(selParty) int64) bool {
		if len(ids) == 0 {
			return true
		}
		for _, p := range parties {
			if v := get(p); v != 0 && slices.Contains(ids, v) {
				return true
			}
		}
		return false
	}
	if !some(w.characters, func(p selParty) int64 { return p.Character }) ||
		!some(w.corporations, func(p selParty) int64 { return p.Corporation }) ||
		!some(w.alliances, func(p selParty) int64 { return p.Alliance }) ||
		!some(w.factions, func(p selParty) int64 { return p.Faction }) ||
		!some(w.ships, func(p selParty) int64 { return p.Ship }) ||
		!some(w.groups, func(p selParty) int64 { return groups[p.Ship] }) {
		return false
	}
	if len(w.labels) > 0 {
		found := false
		for _, l := range k.ZKB.Labels {
			found = found || slices.Contains(w.labels, l)
		}
		if !found {
			return false
		}
	}
	if w.hasMin && k.ZKB.TotalValue < w.minValue {
		return false
	}
	if len(w.locations) > 0 && !slices.Contains(w.locations, k.ZKB.LocationID) {
		return false
	}
	return true
}

// query is w as /api/killfeed parameters.
func (w selWant) query() url.Values {
	q := url.Values{}
	add := func(name string, ids []int64) {
		for _, id := range ids {
			q.Add(name+"[]", itoa(id))
		}
	}
	add("systems", w.systems)
	add("characters", w.characters)
	add("corporations", w.corporations)
	add("alliances", w.alliances)
	add("factions", w.factions)
	add("ships", w.ships)
	add("groups", w.groups)
	add("locations", w.locations)
	for _, l := range w.labels {
		q.Add("labels[]", l)
	}
	if w.side != "" {
		q.Set("side", w.side)
	}
	if w.hasMin {
		q.Set("min_value", strconv.FormatFloat(w.minValue, 'f', -1, 64))
	}
	return q
}

// terms is w as the members of a subscribe frame or join payload.
func (w selWant) terms() map[string]any {
	m := map[string]any{}
	set := func(name string, v any, ok bool) {
		if ok {
			m[name] = v
		}
	}
	set("systems", w.systems, len(w.systems) > 0)
	set("characters", w.characters, len(w.characters) > 0)
	set("corporations", w.corporations, len(w.corporations) > 0)
	set("alliances", w.alliances, len(w.alliances) > 0)
	set("factions", w.factions, len(w.factions) > 0)
	set("ships", w.ships, len(w.ships) > 0)
	set("groups", w.groups, len(w.groups) > 0)
	set("locations", w.locations, len(w.locations) > 0)
	set("labels", w.labels, len(w.labels) > 0)
	set("side", w.side, w.side != "")
	set("min_value", w.minValue, w.hasMin)
	return m
}

// selCorpus is the fixture's killmails, each given a zkb block: a value, a
// location and labels, made up from its index.
func selCorpus() []selKillmail {
	GinkgoHelper()
	f, err := os.Open("../testdata/killmails.jsonl.gz")
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	zr, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	var out []selKillmail
	for i := 0; sc.Scan(); i++ {
		var obj map[string]json.RawMessage
		Expect(json.Unmarshal(sc.Bytes(), &obj)).To(Succeed())
		var attackers []json.RawMessage
		Expect(json.Unmarshal(obj["attackers"], &attackers)).To(Succeed())
		labels := []string{[]string{"loc:highsec", "loc:lowsec", "loc:nullsec"}[i%3]}
		if len(attackers) == 1 {
			labels = append(labels, "solo")
		}
		if i%4 == 0 {
			labels = append(labels, "pvp")
		}
		zkb := map[string]any{
			"locationID": 40000001 + i%5,
			"totalValue": float64(i%23) * 7.5e8, // up to 16.5 B
			"labels":     labels,
			"npc":        i%7 == 0,
			"hash":       fmt.Sprintf("h%d", i),
		}
		obj["zkb"], _ = json.Marshal(zkb)
		raw, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		var k selKillmail
		Expect(json.Unmarshal(raw, &k)).To(Succeed())
		k.raw = raw
		out = append(out, k)
	}
	Expect(out).To(HaveLen(300))
	return out
}

// mostCommon returns the id get gives most often over the corpus' parties.
func mostCommon(kms []selKillmail, get func(selParty) int64, victims, attackers bool) int64 {
	n := map[int64]int{}
	for _, k := range kms {
		if victims {
			n[get(k.Victim)]++
		}
		if attackers {
			for _, a := range k.Attackers {
				n[get(a)]++
			}
		}
	}
	delete(n, 0)
	best, id := 0, int64(0)
	for k, v := range n {
		if v > best || (v == best && k < id) {
			best, id = v, k
		}
	}
	return id
}

// selWants are the selections the specs try, built from the corpus.
func selWants(kms []selKillmail, groups map[int64]int64) []selWant {
	alliance := mostCommon(kms, func(p selParty) int64 { return p.Alliance }, true, true)
	corp := mostCommon(kms, func(p selParty) int64 { return p.Corporation }, true, false)
	ship := mostCommon(kms, func(p selParty) int64 { return p.Ship }, false, true)
	group := mostCommon(kms, func(p selParty) int64 { return groups[p.Ship] }, true, false)
	char := mostCommon(kms, func(p selParty) int64 { return p.Character }, false, true)
	faction := mostCommon(kms, func(p selParty) int64 { return p.Faction }, true, true)
	system := kms[0].System
	ws := []selWant{
		{name: "an alliance, any side", alliances: []int64{alliance}},
		{name: "a corporation's losses", corporations: []int64{corp}, side: "victim"},
		{name: "an alliance's attackers flying a ship", alliances: []int64{alliance}, ships: []int64{ship}, side: "attacker"},
		{name: "a ship group", groups: []int64{group}},
		{name: "a character", characters: []int64{char}},
		{name: "a faction", factions: []int64{faction}},
		{name: "worth 5 B or more", minValue: 5e9, hasMin: true},
		{name: "solo over 1 B", labels: []string{"solo"}, minValue: 1e9, hasMin: true},
		{name: "a location", locations: []int64{40000002}},
		{name: "an alliance in a system", systems: []int64{system}, alliances: []int64{kms[0].Victim.Alliance, alliance}},
	}
	return ws
}

func (w selWant) expected(kms []selKillmail, groups map[int64]int64, ids []uint64) []uint64 {
	out := []uint64{}
	for i, k := range kms {
		if w.matches(k, groups) {
			out = append(out, ids[i])
		}
	}
	return out
}

var _ = Describe("who, what and how much: selections on every interface", Ordered, func() {
	var (
		kf     *app.App
		base   string
		kms    []selKillmail
		groups map[int64]int64
		wants  []selWant
		ids    []uint64 // event ids, in corpus order
	)
	post := func(ctx context.Context) {
		GinkgoHelper()
		var body []byte
		body = append(body, '[')
		for i, k := range kms {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, k.raw...)
		}
		body = append(body, ']')
		ids = postKillmails(ctx, base, body)
	}
	BeforeAll(func() {
		kms = selCorpus()
		groups = shipGroups()
		wants = selWants(kms, groups)
		for _, w := range wants {
			Expect(w.expected(kms, groups, make([]uint64, len(kms)))).NotTo(BeEmpty(), w.name)
			Expect(len(w.expected(kms, groups, make([]uint64, len(kms))))).To(BeNumerically("<", len(kms)), w.name)
		}
	})
	BeforeEach(func() {
		// A small scan bound makes the filtered reads page.
		kf = startKillfeed(app.Config{MaxScan: 37})
		base = kf.URL()
	})

	It("answers a poll page by page (more) with exactly the matching killmails", func(ctx SpecContext) {
		post(ctx)
		for i, w := range wants {
			q := w.query()
			q.Set("client_id", "poll-"+strconv.Itoa(i))
			q.Set("limit", "5")
			got := []uint64{}
			for pages := 0; ; pages++ {
				Expect(pages).To(BeNumerically("<", 200))
				r := get(ctx, base+"/api/killfeed?"+q.Encode())
				Expect(r.Status).To(Equal(http.StatusOK), "%s: %s", w.name, r.Body)
				var p struct {
					pollAnswer
					More bool `json:"more"`
				}
				r.JSON(&p)
				Expect(len(p.Events)).To(BeNumerically("<=", 5))
				got = append(got, p.IDs()...)
				if !p.More {
					break
				}
			}
			Expect(got).To(Equal(w.expected(kms, groups, ids)), w.name)
			// Caught up: nothing more, and not more either.
			r := get(ctx, base+"/api/killfeed?"+q.Encode())
			Expect(string(r.Body)).To(ContainSubstring(`"events":[],"more":false`))
		}
	}, SpecTimeout(2*time.Minute))

	It("serves /next one matching killmail at a time", func(ctx SpecContext) {
		post(ctx)
		w := wants[0]
		q := w.query()
		q.Set("client_id", "next")
		got := []uint64{}
		for {
			r := get(ctx, base+"/api/killfeed/next?"+q.Encode())
			if r.Status == http.StatusNoContent {
				break
			}
			Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
			var ev struct {
				EventID uint64 `json:"event_id"`
			}
			r.JSON(&ev)
			got = append(got, ev.EventID)
		}
		Expect(got).To(Equal(w.expected(kms, groups, ids)))
	}, SpecTimeout(time.Minute))

	It("replays and streams over the native websocket, once per connection", func(ctx SpecContext) {
		half := len(kms) / 2
		all := kms
		kms = all[:half]
		post(ctx)
		first := ids
		ws := wsDial(ctx, base, 0)
		for _, w := range wants {
			t := w.terms()
			t["type"], t["since"] = "subscribe", 0
			frame, _ := json.Marshal(t)
			ws.send(ctx, string(frame))
		}
		ws.send(ctx, `{"type":"ping"}`)
		// The replays: every killmail matching some subscription, once.
		want := map[uint64]bool{}
		for _, w := range wants {
			for _, id := range w.expected(kms, groups, first) {
				want[id] = true
			}
		}
		got, acks := []uint64{}, 0
		for f := ws.next(ctx); f.Type != "pong"; f = ws.next(ctx) {
			switch f.Type {
			case "subscribed":
				acks++
			case "killmail":
				got = append(got, f.EventID)
			default:
				Fail("frame " + f.Type + ": " + f.Error)
			}
		}
		Expect(acks).To(Equal(len(wants)))
		Expect(got).To(ConsistOf(keys(want)))
		// Live: the other half.
		kms = all[half:]
		post(ctx)
		live := map[uint64]bool{}
		for _, w := range wants {
			for _, id := range w.expected(kms, groups, ids) {
				live[id] = true
			}
		}
		got = ws.killmails(ctx, len(live))
		Expect(got).To(Equal(sorted(keys(live))))
		ws.pingPong(ctx)
		// A subscription that repeats one with since=0 sends nothing again.
		t := wants[0].terms()
		t["type"], t["since"] = "subscribe", 0
		frame, _ := json.Marshal(t)
		ws.send(ctx, string(frame))
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		ws.pingPong(ctx)
		kms = all
	}, SpecTimeout(time.Minute))

	It("joins Phoenix topics per entity, narrowed by the payload, pushing an event once on the first joined", func(ctx SpecContext) {
		post(ctx)
		c := &phxClient{c: dialWS(ctx, base, "/socket/websocket?vsn=2.0.0")}
		alliance := wants[0].alliances[0]
		ship := wants[2].ships[0]
		c.send(ctx, "1", "1", "alliance:"+itoa(alliance), "phx_join", `{"since":0}`)
		Expect(c.reply(ctx, "alliance:"+itoa(alliance))).To(Equal("ok"))
		byAlliance := selWant{alliances: []int64{alliance}}.expected(kms, groups, ids)
		got := map[string][]uint64{}
		for range byAlliance {
			topic, _, id := c.push(ctx)
			got[topic] = append(got[topic], id)
		}
		c.send(ctx, "2", "2", "ship:"+itoa(ship), "phx_join", `{"since":0,"side":"attacker","min_value":1e9}`)
		Expect(c.reply(ctx, "ship:"+itoa(ship))).To(Equal("ok"))
		byShip := selWant{ships: []int64{ship}, side: "attacker", minValue: 1e9, hasMin: true}.expected(kms, groups, ids)
		extra := 0
		for _, id := range byShip {
			if !slices.Contains(byAlliance, id) {
				extra++
			}
		}
		for range extra {
			topic, _, id := c.push(ctx)
			got[topic] = append(got[topic], id)
		}
		c.heartbeat(ctx)
		Expect(got["alliance:"+itoa(alliance)]).To(Equal(byAlliance))
		for _, id := range got["ship:"+itoa(ship)] {
			Expect(byShip).To(ContainElement(id))
			Expect(byAlliance).NotTo(ContainElement(id))
		}
		Expect(got["ship:"+itoa(ship)]).To(HaveLen(extra))
		// An unknown group is refused.
		c.send(ctx, "3", "3", "group:999999999", "phx_join", `{}`)
		Expect(c.reply(ctx, "group:999999999")).To(Equal("error"))
	}, SpecTimeout(time.Minute))

	It("publishes zKillboard's channels", func(ctx SpecContext) {
		z := &zkillClient{c: dialWS(ctx, base, "/websocket/")}
		ids = nil
		alliance := wants[0].alliances[0]
		group := wants[3].groups[0]
		for _, ch := range []string{"alliance:" + itoa(alliance), "group:" + itoa(group), "label:solo", "total_value:10b+", "location:40000002"} {
			z.send(ctx, `{"action":"sub","channel":"`+ch+`"}`)
		}
		Expect(z.sync(ctx)).To(BeEmpty())
		post(ctx)
		want := []int64{}
		for _, k := range kms {
			for _, w := range []selWant{{alliances: []int64{alliance}}, {groups: []int64{group}}, {labels: []string{"solo"}},
				{minValue: 1e10, hasMin: true}, {locations: []int64{40000002}}} {
				if w.matches(k, groups) {
					want = append(want, k.ID)
					break
				}
			}
		}
		got := []int64{}
		for len(got) < len(want) {
			obj, b := z.next(ctx)
			var id int64
			Expect(json.Unmarshal(obj["killmail_id"], &id)).To(Succeed(), "frame %s", b)
			got = append(got, id)
		}
		Expect(got).To(Equal(want))
		Expect(z.sync(ctx)).To(BeEmpty())
	}, SpecTimeout(time.Minute))

	It("takes RedisQ's filter= as util/filters.js defines it, a raw ';' included", func(ctx SpecContext) {
		alliance := wants[0].alliances[0]
		filters := []struct {
			raw  string // as a bot types it, unencoded
			want func(selKillmail) bool
		}{
			{"alliance_id=" + itoa(alliance), func(k selKillmail) bool { return selWant{alliances: []int64{alliance}}.matches(k, groups) }},
			{"totalValue>=5000000000;solar_system_id=" + itoa(kms[0].System), func(k selKillmail) bool {
				return k.ZKB.TotalValue >= 5e9 && k.System == kms[0].System
			}},
			{"labels=solo,totalValue>15000000000", func(k selKillmail) bool {
				return slices.Contains(k.ZKB.Labels, "solo") || k.ZKB.TotalValue > 15e9
			}},
			{"npc=true;hash!=h0", func(k selKillmail) bool {
				i := slices.IndexFunc(kms, func(x selKillmail) bool { return x.ID == k.ID })
				return i%7 == 0 && i != 0
			}},
		}
		for i := range filters {
			r := get(ctx, base+"/listen.php?queueID=f"+strconv.Itoa(i)+"&ttw=1&filter="+filters[i].raw)
			Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
			Expect(string(r.Body)).To(Equal(`{"package":null}`))
		}
		post(ctx)
		for i, f := range filters {
			want := []int64{}
			for _, k := range kms {
				if f.want(k) {
					want = append(want, k.ID)
				}
			}
			Expect(want).NotTo(BeEmpty(), f.raw)
			got := []int64{}
			for {
				r := get(ctx, base+"/listen.php?queueID=f"+strconv.Itoa(i)+"&ttw=1&cachebuster=1&esi=1&filter="+f.raw)
				Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
				var p struct {
					Package *struct {
						KillID int64 `json:"killID"`
					} `json:"package"`
				}
				r.JSON(&p)
				if p.Package == nil {
					break
				}
				got = append(got, p.Package.KillID)
			}
			Expect(got).To(Equal(want), f.raw)
		}
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("bad selections", func() {
	var base string
	BeforeEach(func() { base = startKillfeed(app.Config{}).URL() })
	DescribeTable("are a 400 naming the parameter",
		func(ctx SpecContext, path, rawQuery, param string) {
			r := get(ctx, base+path+"?"+rawQuery)
			Expect(r.Status).To(Equal(http.StatusBadRequest), "body: %s", r.Body)
			Expect(r.Error()).To(HavePrefix(param + ": "))
		},
		Entry("an unknown parameter", "/api/killfeed", "client_id=x&all=true&alliance[]=99000001", "alliance[]"),
		Entry("a malformed id", "/api/killfeed", "client_id=x&alliances[]=abc", "alliances"),
		Entry("an unknown side", "/api/killfeed", "client_id=x&alliances[]=1&side=both", "side"),
		Entry("a negative min_value", "/api/killfeed", "client_id=x&min_value=-1", "min_value"),
		Entry("an empty label", "/api/killfeed", "client_id=x&labels[]=", "labels"),
		Entry("an unknown group", "/api/killfeed", "client_id=x&groups[]=999999999", "groups"),
		Entry("a bad escape", "/api/killfeed/next", "client_id=a%zz&all=true", "client_id"),
		Entry("an indexed list", "/api/killfeed", "client_id=x&systems[1]=30002187", "systems[1]"),
		Entry("too many parameters", "/api/killfeed", "client_id=x&all=true"+strings.Repeat("&a=1", 10001), "query"),
		Entry("listen.php: an unknown region", "/listen.php", "queueID=q&filter=region:1", "filter"),
		Entry("listen.php: ; with ,", "/listen.php", "queueID=q&filter=a=1;b=2,c=3", "filter"),
		Entry("listen.php: both kinds", "/listen.php", "queueID=q&filter=system:30000142,alliance_id=1", "filter"),
	)
})

func keys(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(ids []uint64) []uint64 {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

var _ = Describe("selections through an edge", func() {
	It("give the same bytes as from the core: filtered polls, replays and live pushes", func(ctx SpecContext) {
		remote := freeAddr()
		core := startCoreProcess(GinkgoT().TempDir(), remote)
		e := startEdgeProcess(ctx, remote)
		kms, groups := selCorpus(), shipGroups()
		w := selWants(kms, groups)[2] // an alliance's attackers flying a ship
		body := func(part []selKillmail) []byte {
			b := []byte{'['}
			for i, k := range part {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, k.raw...)
			}
			return append(b, ']')
		}
		ids := postKillmails(ctx, core.URL, body(kms[:150]))
		want := w.expected(kms[:150], groups, ids)
		Expect(want).NotTo(BeEmpty())

		q := w.query()
		poll := func(node, client string) []byte {
			q.Set("client_id", client)
			r := get(ctx, node+"/api/killfeed?"+q.Encode())
			Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
			return r.Body
		}
		Expect(poll(e.URL, "via-edge")).To(Equal(poll(core.URL, "direct")))
		var p pollAnswer
		Expect(json.Unmarshal(poll(e.URL, "fresh"), &p)).To(Succeed())
		Expect(p.IDs()).To(Equal(want))

		t := w.terms()
		t["type"], t["since"] = "subscribe", 0
		frame, _ := json.Marshal(t)
		direct, viaEdge := dialWS(ctx, core.URL, "/api/ws"), dialWS(ctx, e.URL, "/api/ws")
		for _, c := range []*websocket.Conn{direct, viaEdge} {
			Expect(c.Write(ctx, websocket.MessageText, frame)).To(Succeed())
		}
		replay := readRaw(ctx, direct, 1+len(want))
		Expect(readRaw(ctx, viaEdge, 1+len(want))).To(Equal(replay))

		ids = postKillmails(ctx, core.URL, body(kms[150:]))
		live := w.expected(kms[150:], groups, ids)
		Expect(live).NotTo(BeEmpty())
		pushed := readRaw(ctx, direct, len(live))
		Expect(readRaw(ctx, viaEdge, len(live))).To(Equal(pushed))
		for i, id := range live {
			Expect(pushed[i]).To(ContainSubstring(`"event_id":` + itoa(int64(id)) + `,`))
		}
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("subscribe frames", func() {
	It("are paced per connection: past the rate, an error frame, and the connection stays open", func(ctx SpecContext) {
		base := startKillfeed(app.Config{Websocket: transport.WebsocketConfig{SubscribeRate: 0.001, SubscribeBurst: 2}}).URL()
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		ws.send(ctx, `{"type":"subscribe","alliances":[99000001]}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		ws.send(ctx, `{"type":"subscribe","systems":[30002187]}`)
		f := ws.next(ctx)
		Expect(f.Type).To(Equal("error"))
		Expect(f.Error).To(HavePrefix("subscribe: more than 0.001 a second"))
		ws.pingPong(ctx)
		// The subscriptions made stand.
		ids := wsInsert(ctx, base, jita, 1)
		Expect(ws.killmails(ctx, 1)).To(Equal(ids))
		other := wsDial(ctx, base, 0)
		other.send(ctx, `{"type":"subscribe","systems":[30002187]}`)
		Expect(other.next(ctx).Type).To(Equal("subscribed"))
	}, SpecTimeout(30*time.Second))
})

var _ = Describe("Dashboard: who and how much", func() {
	It("follows an alliance by id with a minimum value and shows only its killmails", func(sctx SpecContext) {
		ctx := startBrowser() // first: it skips when there is no Chromium
		kf := startKillfeed(app.Config{})
		ctx, cancel := context.WithTimeout(ctx, 110*time.Second)
		defer cancel()
		kms, groups := selCorpus(), shipGroups()
		alliance := selWants(kms, groups)[0].alliances[0]
		Expect(chromedp.Do(ctx,
			chromedp.Navigate(kf.URL()+"/"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
			chromedp.SetValue(chromedp.CSS("#who-kind"), "alliance"),
			chromedp.SendKeys(chromedp.CSS("#who-id"), itoa(alliance)+kb.Enter),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#following li[data-kind="alliance"][data-id="%d"]`, alliance))),
			chromedp.SendKeys(chromedp.CSS("#min-value"), "1000000000"+kb.Tab),
		)).To(Succeed())
		Eventually(func() (string, error) { return chromedp.Run(ctx, chromedp.Location()) }).WithContext(ctx).
			Should(HaveSuffix(fmt.Sprintf("#alliances=%d&min_value=1000000000", alliance)))
		// A fresh page on that address follows it on one connection.
		Expect(chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))).To(Succeed())
		Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("state").Should(Equal("live"))
		Expect(connAttr(ctx, "subscriptions")).To(Equal("1"))
		Expect(chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#min-value")))).To(Equal("1000000000"))

		body := []byte{'['}
		for i, k := range kms {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, k.raw...)
		}
		ids := postKillmails(sctx, kf.URL(), append(body, ']'))
		want := selWant{alliances: []int64{alliance}, minValue: 1e9, hasMin: true}.expected(kms, groups, ids)
		Expect(want).NotTo(BeEmpty())
		Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newestFirst(want)))
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("filtered subscriptions resume", func() {
	It("say missed when retention dropped part of a filtered range, and a client_id resumes where it left off", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{MaxEvents: 100})
		base := kf.URL()
		kms, groups := selCorpus(), shipGroups()
		w := selWants(kms, groups)[0] // an alliance, any side
		body := func(part []selKillmail) []byte {
			b := []byte{'['}
			for i, k := range part {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, k.raw...)
			}
			return append(b, ']')
		}
		ids := postKillmails(ctx, base, body(kms))
		_, err := kf.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		retained := w.expected(kms[200:], groups, ids[200:])

		ws := wsDial(ctx, base, 0)
		t := w.terms()
		t["type"], t["since"] = "subscribe", 0
		frame, _ := json.Marshal(t)
		ws.send(ctx, string(frame))
		ack := ws.next(ctx)
		Expect(ack.Type).To(Equal("subscribed"))
		Expect(ack.Missed).To(BeTrue())
		Expect(ws.killmails(ctx, len(retained))).To(Equal(retained))
		ws.pingPong(ctx)

		// A client_id reads part of it, drops, and resumes on a new
		// connection with the rest, nothing twice.
		t = w.terms()
		t["type"], t["client_id"] = "subscribe", "resumer"
		frame, _ = json.Marshal(t)
		first := wsDial(ctx, base, 0)
		first.send(ctx, string(frame))
		Expect(first.next(ctx).Type).To(Equal("subscribed"))
		Expect(first.killmails(ctx, len(retained))).To(Equal(retained))
		first.pingPong(ctx)
		Expect(first.c.Close(websocket.StatusNormalClosure, "")).To(Succeed())
		second := wsDial(ctx, base, 0)
		second.send(ctx, string(frame))
		Expect(second.next(ctx).Type).To(Equal("subscribed"))
		second.pingPong(ctx) // it read them all: nothing again
	}, SpecTimeout(time.Minute))
})

var _ = Describe("a filtered long-poll", func() {
	It("is answered by the first matching killmail, not by others", func(ctx SpecContext) {
		base := startKillfeed(app.Config{}).URL()
		kms, groups := selCorpus(), shipGroups()
		alliance := selWants(kms, groups)[0].alliances[0]
		in := func(k selKillmail) bool { return selWant{alliances: []int64{alliance}}.matches(k, groups) }
		var other, match selKillmail
		for _, k := range kms {
			if in(k) && match.ID == 0 {
				match = k
			}
			if !in(k) && other.ID == 0 {
				other = k
			}
		}
		Expect(get(ctx, base+"/api/killfeed?client_id=waiter&alliances[]="+itoa(alliance)).Status).To(Equal(http.StatusOK))
		answered := make(chan response, 1)
		go func() {
			defer GinkgoRecover()
			answered <- get(ctx, base+"/api/killfeed?client_id=waiter&wait=20&alliances[]="+itoa(alliance))
		}()
		// Wait until the poll waits (the gauge counts it), then store a
		// killmail it does not want, then one it does.
		Eventually(func() string {
			return string(get(ctx, base+"/metrics").Body)
		}).WithContext(ctx).Should(MatchRegexp(`(?m)^killfeed_long_polls_waiting 1$`))
		ids := postKillmails(ctx, base, append(append([]byte{'['}, other.raw...), ']'))
		Consistently(answered).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
		ids = append(ids, postKillmails(ctx, base, append(append([]byte{'['}, match.raw...), ']'))...)
		var r response
		Eventually(answered).WithContext(ctx).Should(Receive(&r))
		var p pollAnswer
		r.JSON(&p)
		Expect(p.IDs()).To(Equal(ids[1:]))
	}, SpecTimeout(time.Minute))
})
