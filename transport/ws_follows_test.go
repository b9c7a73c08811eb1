package transport

import (
	"slices"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

func followEvent(id uint64, system, alliance int64) eventlog.Event {
	f := &selection.Facts{System: system}
	f.Victim[selection.Alliance] = alliance
	return eventlog.Event{ID: id, SystemID: system, Facts: f}
}

func allianceJoin(t *testing.T, key, loc string, systems []int64, alliance int64) *wsJoin {
	t.Helper()
	var where selection.Predicate
	if alliance != 0 {
		var err error
		if where, err = (selection.Terms{Alliances: []int64{alliance}}).Compile(); err != nil {
			t.Fatal(err)
		}
	}
	return &wsJoin{key: key, topic: key, loc: loc, systems: systems, where: where}
}

// TestWSFollowsSendOnce: a live event goes out once, on the first
// subscription that wants it, and not at all when none does.
func TestWSFollowsSendOnce(t *testing.T) {
	w := newWSFollows()
	narrow := allianceJoin(t, "all|A", "all", []int64{eventlog.AllSystems}, 7)
	sys := allianceJoin(t, "system:1", "system:1", []int64{1}, 0)
	w.add([]*wsJoin{narrow}, 10)
	w.add([]*wsJoin{sys}, 10)
	for _, c := range []struct {
		ev   eventlog.Event
		want *wsJoin
	}{
		{followEvent(9, 1, 7), nil},     // at or below the floor: dealt with
		{followEvent(11, 1, 7), sys},    // both want it: the system topic carries it
		{followEvent(11, 1, 7), nil},    // again: dealt with
		{followEvent(12, 2, 7), narrow}, // only the alliance's
		{followEvent(13, 2, 8), nil},    // nobody's
		{followEvent(14, 1, 8), sys},    // the system's
	} {
		if got, _ := w.live(c.ev); got != c.want {
			t.Errorf("event %d: sent on %v, want %v", c.ev.ID, got, c.want)
		}
	}
	accept := w.accept()
	if accept == nil || !accept(followEvent(20, 1, 0)) || !accept(followEvent(20, 3, 7)) || accept(followEvent(20, 3, 8)) {
		t.Error("the queue filter does not match the subscriptions")
	}
}

// TestWSFollowsCovered: a replay skips what a current subscription sent or
// will send, and what an ended one sent.
func TestWSFollowsCovered(t *testing.T) {
	w := newWSFollows()
	j := allianceJoin(t, "all|A", "all", []int64{eventlog.AllSystems}, 7)
	j.start, j.from = 5, 10
	w.add([]*wsJoin{j}, 10)
	if !w.covered(followEvent(6, 1, 7)) || w.covered(followEvent(5, 1, 7)) || w.covered(followEvent(6, 1, 8)) {
		t.Fatal("covered by the current subscription")
	}
	w.live(followEvent(15, 1, 7))
	if gone := w.leave(j); len(gone) != 1 || gone[0] != eventlog.AllSystems {
		t.Fatalf("left systems %v", gone)
	}
	if w.accept() != nil {
		t.Fatal("a connection with no subscription filters")
	}
	// The ended subscription sent (5, 15].
	for id, want := range map[uint64]bool{5: false, 6: true, 15: true, 16: false} {
		if got := w.covered(followEvent(id, 1, 7)); got != want {
			t.Errorf("event %d covered = %v after the subscription ended", id, got)
		}
	}
	for range wsMaxRemembered {
		k := allianceJoin(t, "x", "all", []int64{eventlog.AllSystems}, 9)
		k.start, k.from = 100, 101
		w.add([]*wsJoin{k}, 101)
		w.leave(k)
	}
	if w.covered(followEvent(6, 1, 7)) || len(w.sent) != wsMaxRemembered {
		t.Error("the oldest ended subscription is still remembered")
	}
}

// TestTopicsExact: a subscription whose PubSub topics carry exactly its
// events needs no filter on PubSub's goroutine; one whose predicate is
// narrower than its topics keeps it. Checked against what Topics publishes
// for every fixture killmail: for an exact selection, an event is on one
// of its topics if and only if it matches.
func TestTopicsExact(t *testing.T) {
	compile := func(terms selection.Terms) selection.Predicate {
		t.Helper()
		p, err := terms.Compile()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := []int64{eventlog.AllSystems}
	kms := fixture.Killmails()
	facts := selection.Extract(kms[0].JSON)
	corp := facts.Victim[selection.Corporation]
	alliance := facts.Attackers[selection.Alliance][0]
	for _, c := range []struct {
		name     string
		sel      selection.Selection
		entities bool
		want     bool
	}{
		{"systems, no predicate", selection.Selection{Systems: []int64{1, 2}}, true, true},
		{"all, no predicate", selection.Selection{Systems: all}, false, true},
		{"a corporation", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}})}, true, true},
		{"alliances, side any", selection.Selection{Systems: all, Where: compile(selection.Terms{Alliances: []int64{alliance, corp}, Side: "any"})}, true, true},
		{"a corporation without entity topics", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}})}, false, false},
		{"a corporation in a system", selection.Selection{Systems: []int64{1}, Where: compile(selection.Terms{Corporations: []int64{corp}})}, true, false},
		{"a corporation as victim", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}, Side: "victim"})}, true, false},
		{"a corporation and an alliance", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}, Alliances: []int64{alliance}})}, true, false},
		{"a corporation and a label", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}, Labels: []string{"solo"}})}, true, false},
		{"a corporation and a value", selection.Selection{Systems: all, Where: compile(selection.Terms{Corporations: []int64{corp}, MinValue: new(float64)})}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := topicsExact(c.sel, c.entities); got != c.want {
				t.Fatalf("topicsExact = %v, want %v", got, c.want)
			}
			if !c.want || !c.sel.IsAll() || c.sel.Where.Empty() {
				return
			}
			topics := selectionTopics(c.sel, c.entities)
			publish := Topics(universe.Default())
			matched := 0
			for i, km := range kms {
				ev := eventlog.Event{ID: uint64(i + 1), SystemID: km.SystemID, Killmail: km.JSON, Facts: selection.Extract(km.JSON)}
				on := slices.ContainsFunc(publish(ev), func(topic string) bool { return slices.Contains(topics, topic) })
				if m := c.sel.Where.Match(ev.Facts); m != on {
					t.Fatalf("killmail %d: matches %v, on the topics %v", km.ID, m, on)
				} else if m {
					matched++
				}
			}
			if matched == 0 {
				t.Fatal("no fixture killmail matches: the check shows nothing")
			}
		})
	}
}

// TestWSFollowsSole: a connection's one and only subscription, whose
// topics carry exactly its events, sends what its queue hands it without
// asking its predicate; as soon as the queue may have held another
// subscription's events (a second subscribe, one that left, one that
// failed after its topics were followed) every event is asked again, for
// good.
func TestWSFollowsSole(t *testing.T) {
	exact := func(key string) *wsJoin {
		j := allianceJoin(t, key, "all", []int64{eventlog.AllSystems}, 7)
		j.exact = true
		return j
	}
	other := followEvent(12, 2, 8) // not alliance 7's: only another topic brings it

	w := newWSFollows()
	sole := exact("all|A")
	w.held++ // as session.hold does
	w.add([]*wsJoin{sole}, 10)
	if got, _ := w.live(followEvent(11, 2, 7)); got != sole {
		t.Fatalf("its own event sent on %v", got)
	}
	if got, _ := w.live(other); got != sole {
		t.Fatal("the sole subscription asked its predicate: its topics decide")
	}

	// A second subscription: the queue may hold its events.
	sys := allianceJoin(t, "system:3", "system:3", []int64{3}, 0)
	w.held++
	w.add([]*wsJoin{sys}, 12)
	if got, _ := w.live(followEvent(13, 2, 8)); got != nil {
		t.Fatalf("another topic's event sent on %v", got)
	}
	w.leave(sys) // one left again: still asked
	if got, _ := w.live(followEvent(14, 2, 8)); got != nil {
		t.Fatalf("after the second left, another topic's event sent on %v", got)
	}

	// A subscribe that failed after its topics were followed, then the
	// first that joined.
	w = newWSFollows()
	w.held += 2
	first := exact("all|A")
	w.add([]*wsJoin{first}, 10)
	if got, _ := w.live(other); got != nil {
		t.Fatalf("after a failed subscribe, another topic's event sent on %v", got)
	}
	// Events up to the sole subscription's replay are its replay's, and
	// each goes out once.
	w = newWSFollows()
	w.held++
	late := exact("all|A")
	late.from = 15
	w.add([]*wsJoin{late}, 10)
	for _, c := range []struct {
		id   uint64
		want *wsJoin
	}{{9, nil}, {12, nil}, {16, late}, {16, nil}, {17, late}} {
		if got, _ := w.live(followEvent(c.id, 2, 7)); got != c.want {
			t.Errorf("event %d sent on %v, want %v", c.id, got, c.want)
		}
	}
	// A subscription whose predicate is narrower than its topics.
	w = newWSFollows()
	w.held++
	w.add([]*wsJoin{allianceJoin(t, "all|A", "all", []int64{eventlog.AllSystems}, 7)}, 10)
	if got, _ := w.live(other); got != nil {
		t.Fatalf("a narrowed subscription sent %v", got)
	}
}
