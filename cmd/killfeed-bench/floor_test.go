package main

import (
	"context"
	"testing"
	"time"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

// The floor reference must deliver what a subscriber follows, in order,
// and nothing else, or its figures mean nothing.
func TestFloorDeliversWhatIsFollowed(t *testing.T) {
	tgt, err := startFloor()
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			tgt.stop()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	km := fixture.Killmails()[0]
	other := km
	other.SystemID++
	c := subscribeRaw(ctx, t, tgt.wsURL, km.SystemID)
	var head [64]byte
	var want []uint64
	for _, k := range []killmail.Killmail{km, other, km, km} {
		id, err := tgt.insert(k)
		if err != nil {
			t.Fatal(err)
		}
		if k.SystemID == km.SystemID {
			want = append(want, id)
		}
	}
	for _, id := range want {
		n, _, err := c.next(head[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := eventID(head[:n]); got != id {
			t.Fatalf("event_id %d, want %d", got, id)
		}
	}
	tgt.stop()
	stopped = true
	if _, _, err := c.next(head[:]); err == nil {
		t.Fatal("the connection outlived the floor's stop")
	}
}
