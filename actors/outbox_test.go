package actors

import (
	"testing"

	"github.com/killfeed/killfeed/eventlog"
)

func ids(evs []eventlog.Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func TestOutboxWakesOncePerBatch(t *testing.T) {
	var b outbox
	wakes := 0
	wake := func() { wakes++ }
	b.add([]eventlog.Event{{ID: 1}}, wake)
	b.add([]eventlog.Event{{ID: 2}, {ID: 3}}, wake)
	if wakes != 1 {
		t.Fatalf("%d wakes for one batch", wakes)
	}
	evs, over := b.take()
	if got := ids(evs); len(got) != 3 || got[0] != 1 || got[2] != 3 || over {
		t.Fatalf("took %v (overflowed %v)", got, over)
	}
	b.add([]eventlog.Event{{ID: 4}}, wake)
	if wakes != 2 {
		t.Fatalf("no wake after the box was taken")
	}
}

// A PubSub that falls too far behind loses events; the box says so, so
// that PubSub can end its subscribers instead of leaving them a gap.
func TestOutboxOverflowIsReported(t *testing.T) {
	b := outbox{limit: 3}
	wake := func() {}
	b.add([]eventlog.Event{{ID: 1}, {ID: 2}}, wake)
	b.add([]eventlog.Event{{ID: 3}, {ID: 4}}, wake)
	evs, over := b.take()
	if got := ids(evs); !over || len(got) != 2 || got[0] != 3 {
		t.Fatalf("took %v (overflowed %v), want [3 4] and overflowed", got, over)
	}
	b.add([]eventlog.Event{{ID: 5}}, wake)
	if _, over := b.take(); over {
		t.Fatal("overflow reported twice")
	}
}
