package names_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/leaktest"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
)

// A killmail in Jita: the victim (character 90000001 of corporation
// 98000001 in alliance 99000001) in a Rifter; a player attacker with a
// weapon, and an NPC of the Guristas faction.
const jitaKill = `{"attackers":[{"character_id":90000002,"corporation_id":98000002,"damage_done":10,"final_blow":true,"security_status":0.5,"ship_type_id":587,"weapon_type_id":2873},{"corporation_id":1000127,"damage_done":5,"faction_id":500010,"final_blow":false,"security_status":0,"ship_type_id":23328}],"killmail_id":1,"killmail_time":"2021-11-27T00:00:00Z","solar_system_id":30000142,"victim":{"alliance_id":99000001,"character_id":90000001,"corporation_id":98000001,"damage_taken":15,"items":[],"position":{"x":1,"y":2,"z":3},"ship_type_id":587}}`

func newFake() *fakeesi.Server {
	f := fakeesi.New(false)
	f.Character(90000001, "Victim \"Vic\" One")
	f.Character(90000002, "Attacker Two")
	f.Corporation(98000001, "Victim Corp", "VCORP")
	f.Corporation(98000002, "Attacker Corp", "ACORP")
	f.Corporation(1000127, "Guristas", "GURI")
	f.Alliance(99000001, "Victim Alliance", "VALLY")
	return f
}

type memBacking struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *memBacking) Get(k []byte) ([]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[string(k)]
	return v, ok, nil
}

func (b *memBacking) Set(pairs [][2][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string][]byte{}
	}
	for _, p := range pairs {
		b.m[string(p[0])] = append([]byte(nil), p[1]...)
	}
	return nil
}

func resolver(t *testing.T, f *fakeesi.Server, cfg names.Config) *names.Resolver {
	t.Helper()
	if f != nil {
		cfg.Client = names.NewClient(names.ClientConfig{URL: f.URL, Contact: "ops@example.org", BackoffMin: time.Hour, BackoffMax: time.Hour})
	}
	r := names.NewResolver(cfg)
	t.Cleanup(r.Close)
	return r
}

func km(t *testing.T, s string) killmail.Killmail {
	t.Helper()
	k, err := killmail.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type party map[string]any

func decode(t *testing.T, b []byte) (top party, victim party, attackers []party) {
	t.Helper()
	var doc struct {
		Victim    party   `json:"victim"`
		Attackers []party `json:"attackers"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("render is not JSON: %v\n%s", err, b)
	}
	_ = json.Unmarshal(b, &doc)
	return top, doc.Victim, doc.Attackers
}

func expect(t *testing.T, where string, p party, want party) {
	t.Helper()
	for k, v := range want {
		if v == nil {
			if _, ok := p[k]; ok {
				t.Errorf("%s.%s: got %v, want none", where, k, p[k])
			}
			continue
		}
		if p[k] != v {
			t.Errorf("%s.%s: got %#v, want %#v", where, k, p[k], v)
		}
	}
}

func TestRenderAddsEveryName(t *testing.T) {
	f := newFake()
	defer f.Close()
	r := resolver(t, f, names.Config{})
	k := km(t, jitaKill)
	r.Warm(context.Background(), []killmail.Killmail{k})
	rd := names.NewRenderer(r, nil, 0)
	out := rd.Render(eventlog.Event{ID: 1, SystemID: k.SystemID, Killmail: k.JSON})
	top, v, as := decode(t, out)
	expect(t, "top", top, party{"solar_system_name": "Jita", "constellation_id": 20000020.0, "region_id": 10000002.0,
		"region_name": "The Forge", "security": 0.9459, "killmail_id": 1.0})
	expect(t, "victim", v, party{"character_name": `Victim "Vic" One`, "corporation_name": "Victim Corp",
		"corporation_ticker": "VCORP", "alliance_name": "Victim Alliance", "alliance_ticker": "VALLY",
		"ship_type_name": "Rifter", "ship_group_id": 25.0, "ship_group_name": "Frigate", "damage_taken": 15.0})
	expect(t, "attacker 0", as[0], party{"character_name": "Attacker Two", "corporation_name": "Attacker Corp",
		"corporation_ticker": "ACORP", "ship_type_name": "Rifter", "weapon_type_name": "125mm Gatling AutoCannon II",
		"ship_group_id": nil, "alliance_name": nil})
	expect(t, "attacker 1", as[1], party{"faction_name": "Guristas Pirates", "corporation_name": "Guristas",
		"character_name": nil})
	if !strings.HasPrefix(string(out), `{"attackers":[{"character_id":90000002,"corporation_id":98000002,`) {
		t.Errorf("stored fields moved: %s", out[:80])
	}
	// Removing the added fields gives the stored killmail back.
	if rd.Render(eventlog.Event{ID: 1, Killmail: k.JSON}); rd.Renders() != 1 {
		t.Errorf("a complete render was made again: %d renders", rd.Renders())
	}
	if got := f.UserAgents(); len(got) != 1 || !strings.Contains(got[0], "killfeed") || !strings.Contains(got[0], "ops@example.org") {
		t.Errorf("User-Agent: %q", got)
	}
}

func TestStaticNamesWithoutESI(t *testing.T) {
	k := km(t, jitaKill)
	out := names.NewRenderer(nil, nil, 0).Render(eventlog.Event{ID: 1, Killmail: k.JSON})
	top, v, as := decode(t, out)
	expect(t, "top", top, party{"solar_system_name": "Jita", "region_name": "The Forge"})
	expect(t, "victim", v, party{"ship_type_name": "Rifter", "character_name": nil, "corporation_ticker": nil})
	expect(t, "attacker 1", as[1], party{"faction_name": "Guristas Pirates"})
}

func TestOneCallPerIDWhoeverAsks(t *testing.T) {
	f := newFake()
	defer f.Close()
	f.Hold()
	r := resolver(t, f, names.Config{})
	k := km(t, jitaKill)
	var dones []<-chan struct{}
	for range 20 {
		dones = append(dones, r.Start([]killmail.Killmail{k}))
	}
	f.Release()
	for _, d := range dones {
		<-d
	}
	// One POST for both characters, one GET per corporation and alliance.
	if f.Calls("names") != 1 || f.Calls("corporations") != 3 || f.Calls("alliances") != 1 {
		t.Errorf("calls: names %d, corporations %d, alliances %d", f.Calls("names"), f.Calls("corporations"), f.Calls("alliances"))
	}
	<-r.Start([]killmail.Killmail{k})
	if f.Calls("") != 5 {
		t.Errorf("a cached id was asked again: %d calls", f.Calls(""))
	}
}

func TestUnknownIDsAreRememberedAndSplitOut(t *testing.T) {
	f := newFake()
	defer f.Close()
	f.Unknown(90000001)
	r := resolver(t, f, names.Config{})
	k := km(t, jitaKill)
	<-r.Start([]killmail.Killmail{k})
	rd := names.NewRenderer(r, nil, 0)
	_, v, as := decode(t, rd.Render(eventlog.Event{ID: 1, Killmail: k.JSON}))
	expect(t, "victim", v, party{"character_name": nil, "corporation_name": "Victim Corp"})
	expect(t, "attacker 0", as[0], party{"character_name": "Attacker Two"})
	calls := f.Calls("")
	<-r.Start([]killmail.Killmail{k})
	rd.Render(eventlog.Event{ID: 2, Killmail: k.JSON})
	if f.Calls("") != calls || f.Asked(90000001) != 2 { // the refused pair, then alone
		t.Errorf("unknown id asked again: %d calls (was %d), asked %d times", f.Calls(""), calls, f.Asked(90000001))
	}
}

func TestSlowESIHoldsNoLongerThanWait(t *testing.T) {
	f := newFake()
	defer f.Close()
	f.Hold()
	r := resolver(t, f, names.Config{Wait: 50 * time.Millisecond})
	k := km(t, jitaKill)
	r.Warm(context.Background(), []killmail.Killmail{k}) // returns although ESI answers nothing
	if f.InFlight() == 0 {
		t.Fatal("no lookup in flight")
	}
	rd := names.NewRenderer(r, nil, 0)
	ev := eventlog.Event{ID: 7, Killmail: k.JSON}
	_, v, _ := decode(t, rd.Render(ev))
	expect(t, "victim", v, party{"character_name": nil, "ship_type_name": "Rifter"})
	f.Release()
	gomega.NewWithT(t).Eventually(func() party {
		_, v, _ := decode(t, rd.Render(ev))
		return v
	}).Should(gomega.And(gomega.HaveKeyWithValue("character_name", `Victim "Vic" One`), gomega.HaveKeyWithValue("alliance_ticker", "VALLY")))
}

func TestPausesOn420And5xxAndRetriesAfter(t *testing.T) {
	for _, c := range []struct {
		status int
		retry  string
	}{{420, "60"}, {429, "60"}, {503, ""}} {
		f := newFake()
		f.Fail(c.status, c.retry)
		r := resolver(t, f, names.Config{})
		k := km(t, jitaKill)
		<-r.Start([]killmail.Killmail{k})
		first := f.Calls("")
		if first == 0 || first > 5 {
			t.Errorf("%d: %d calls", c.status, first)
		}
		for range 5 {
			r.Warm(context.Background(), []killmail.Killmail{k}) // returns at once: backing off
		}
		if f.Calls("") != first {
			t.Errorf("%d: asked ESI while backing off: %d calls after %d", c.status, f.Calls(""), first)
		}
		f.Close()
	}
}

func TestErrorLimitHeaderPauses(t *testing.T) {
	f := newFake()
	defer f.Close()
	f.ErrorLimitRemain(5, "30")
	c := names.NewClient(names.ClientConfig{URL: f.URL})
	if _, _, err := c.Corporation(context.Background(), 98000001); err != nil {
		t.Fatal(err)
	}
	if c.BackingOff().IsZero() {
		t.Fatal("5 errors left did not pause")
	}
	if _, _, err := c.Corporation(context.Background(), 98000002); err == nil {
		t.Fatal("asked while paused")
	}
	if f.Calls("") != 1 {
		t.Errorf("calls: %d", f.Calls(""))
	}
}

func TestBackingSurvivesANewResolver(t *testing.T) {
	f := newFake()
	defer f.Close()
	var b memBacking
	k := km(t, jitaKill)
	r1 := resolver(t, f, names.Config{Backing: &b})
	<-r1.Start([]killmail.Killmail{k})
	calls := f.Calls("")
	r2 := resolver(t, f, names.Config{Backing: &b, MaxEntries: 2})
	<-r2.Start([]killmail.Killmail{k})
	if f.Calls("") != calls {
		t.Errorf("a restarted resolver asked again: %d calls after %d", f.Calls(""), calls)
	}
	if r2.Len() > 2 {
		t.Errorf("memory holds %d entries, bound 2", r2.Len())
	}
	_, v, _ := decode(t, names.NewRenderer(r2, nil, 0).Render(eventlog.Event{ID: 1, Killmail: k.JSON}))
	expect(t, "victim", v, party{"character_name": `Victim "Vic" One`, "alliance_ticker": "VALLY"})
}

func TestStaleEntriesAreServedAndRefreshed(t *testing.T) {
	f := newFake()
	defer f.Close()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := resolver(t, f, names.Config{TTL: time.Hour, Now: clock})
	k := km(t, jitaKill)
	<-r.Start([]killmail.Killmail{k})
	f.Corporation(98000001, "Renamed Corp", "RNMD")
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	calls := f.Calls("")
	<-r.Start([]killmail.Killmail{k}) // stale: not waited for
	g := gomega.NewWithT(t)
	g.Eventually(func() string {
		e, _ := r.Lookup(98000001)
		return e.Ticker
	}).Should(gomega.Equal("RNMD"))
	// Every stale entry is refreshed, each once; the corporation's
	// answer may come before the others' requests are counted.
	g.Eventually(func() int { return f.Calls("") - calls }).Should(gomega.Equal(5), "refresh calls")
	rd := names.NewRenderer(r, nil, 0)
	_, v, _ := decode(t, rd.Render(eventlog.Event{ID: 1, Killmail: k.JSON}))
	expect(t, "victim", v, party{"corporation_ticker": "RNMD"})
}

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestWithoutESIARenderIsComplete(t *testing.T) {
	r := resolver(t, nil, names.Config{}) // asks nobody
	k := km(t, jitaKill)
	b, partial := names.NewRenderer(r, nil, 0).RenderPartial(eventlog.Event{ID: 1, Killmail: k.JSON})
	if partial {
		t.Error("a render without ESI waits for names that will never come")
	}
	_, v, _ := decode(t, b)
	expect(t, "victim", v, party{"ship_type_name": "Rifter", "character_name": nil})

	f := newFake()
	defer f.Close()
	f.Hold()
	r = resolver(t, f, names.Config{Wait: time.Millisecond})
	r.Warm(context.Background(), []killmail.Killmail{k})
	if _, partial = names.NewRenderer(r, nil, 0).RenderPartial(eventlog.Event{ID: 1, Killmail: k.JSON}); !partial {
		t.Error("a render lacking names ESI is asked for is complete")
	}
	f.Release()
}

// Requests in flight when ESI starts failing fail together: one backoff
// step, not one per request (which would park lookups for minutes).
func TestConcurrentFaultsAreOneBackoffStep(t *testing.T) {
	f := newFake()
	defer f.Close()
	f.Hold()
	c := names.NewClient(names.ClientConfig{URL: f.URL, Concurrent: 16, BackoffMin: time.Second, BackoffMax: time.Hour})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { _, _, _ = c.Corporation(context.Background(), int64(98000001+i)) })
	}
	gomega.NewWithT(t).Eventually(f.InFlight).Should(gomega.Equal(16))
	f.Fail(503, "")
	f.Release()
	wg.Wait()
	if until := time.Until(c.BackingOff()); until <= 0 || until > time.Second {
		t.Errorf("16 concurrent 503s pause for %s, want one step (at most 1s)", until)
	}
}
