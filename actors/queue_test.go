package actors_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

// A Queue hands over what waits, in event_id order, whether one event or a
// burst waited (its first events are kept in the Queue itself, a burst in
// an array of its own); past its limit it ends as a slow consumer after
// the events that fit.
func TestQueueKeepsOrderAcrossBurstsAndEndsPastItsLimit(t *testing.T) {
	_, svc := startInMemory(t)
	ctx := context.Background()
	km := fixture.Killmails()[0]
	const limit = 8
	q, err := svc.SubscribeQueue(ctx, limit, func() {}, actors.SystemTopic(km.SystemID))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	next := int64(1 << 40)
	insert := func(n int) []uint64 {
		t.Helper()
		kms := make([]killmail.Killmail, n)
		for i := range kms {
			next++
			kms[i] = km
			kms[i].ID = next
		}
		res, err := svc.Insert(ctx, kms, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uint64, n)
		for i, r := range res {
			ids[i] = r.EventID
		}
		if err := q.Add(ctx); err != nil { // a round trip: PubSub handed them over
			t.Fatal(err)
		}
		return ids
	}
	take := func() []uint64 {
		t.Helper()
		evs, ended, err := q.Take(nil)
		if ended || err != nil {
			t.Fatalf("ended %v, %v", ended, err)
		}
		ids := make([]uint64, len(evs))
		for i, ev := range evs {
			ids[i] = ev.EventID
		}
		return ids
	}
	for _, n := range []int{1, 2, 1, 5, 2, limit, 1} {
		want := insert(n)
		if got := take(); !slices.Equal(got, want) {
			t.Fatalf("after %d inserted, took %v, want %v", n, got, want)
		}
		if got := take(); len(got) != 0 {
			t.Fatalf("took %v again", got)
		}
	}
	// Two events wait, then a burst: together in order.
	want := append(insert(2), insert(3)...)
	if got := take(); !slices.Equal(got, want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	// Past the limit: the first limit events, then the end.
	want = insert(limit + 2)[:limit]
	evs, ended, err := q.Take(nil)
	if !ended || !errors.Is(err, actors.ErrSlowConsumer) {
		t.Fatalf("past the limit: ended %v, %v", ended, err)
	}
	got := make([]uint64, len(evs))
	for i, ev := range evs {
		got[i] = ev.EventID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("past the limit took %v, want %v", got, want)
	}
}

// SetPrepare runs on every event the queue keeps, before the queue signals
// it: a subscriber that frames events finds them framed when it is woken.
func TestQueuePrepareRunsBeforeTheSignal(t *testing.T) {
	_, svc := startInMemory(t)
	ctx := context.Background()
	km := fixture.Killmails()[0]
	prepared := map[uint64]bool{} // PubSub's goroutine only
	var q *actors.Queue
	var err error
	unprepared := make(chan uint64, 16)
	q, err = svc.SubscribeQueue(ctx, 0, func() {
		evs, _, _ := q.Take(nil)
		for _, ev := range evs {
			if !prepared[ev.EventID] {
				unprepared <- ev.EventID
			}
		}
	}, actors.SystemTopic(km.SystemID))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.SetPrepare(func(ev *actors.KillmailInserted) { prepared[ev.EventID] = true })
	kms := make([]killmail.Killmail, 5)
	for i := range kms {
		kms[i] = km
		kms[i].ID = 1<<40 + int64(i)
	}
	res, err := svc.Insert(ctx, kms[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	more, err := svc.Insert(ctx, kms[1:], nil) // a burst
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Add(ctx); err != nil { // PubSub handed them over
		t.Fatal(err)
	}
	close(unprepared)
	for id := range unprepared {
		t.Errorf("event %d was signalled before it was prepared", id)
	}
	for _, r := range append(res, more...) {
		if !prepared[r.EventID] {
			t.Errorf("event %d was not prepared", r.EventID)
		}
	}
}
