package transport

import (
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
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
