package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

// The client process's reader must record every pushed event with its id,
// keep answering the server's pings (or the server drops the connection)
// and count a connection the server closes.
func TestConnReaderAgainstKillfeed(t *testing.T) {
	a, target, ctx := startPinging(t)

	var closed atomic.Int64
	rd, err := newConnReader(int(raiseNoFile())+1, &closed)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			rd.stop()
		}
	}()
	km := fixture.Killmails()[0]
	for range 2 {
		if err := rd.add(subscribeRaw(ctx, t, target, km.SystemID)); err != nil {
			t.Fatal(err)
		}
	}
	other := km
	other.SystemID++
	var want []uint64
	for i := range 3 {
		time.Sleep(100 * time.Millisecond) // several ping intervals: a missed pong would drop the connections
		km.ID, other.ID = 5_000_000_000+int64(2*i), 5_000_000_001+int64(2*i)
		res, err := a.Actors().Insert(ctx, []killmail.Killmail{km, other}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res[0].EventID)
	}
	for rd.delivered() < int64(2*len(want)) && closed.Load() == 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d connections closed", n)
	}

	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for closed.Load() < 2 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if n := closed.Load(); n != 2 {
		t.Fatalf("%d of 2 closes noticed", n)
	}
	got := rd.stop()
	stopped = true
	count := map[uint64]int{}
	for _, d := range got {
		count[d.id]++
	}
	if len(got) != 2*len(want) || len(count) != len(want) {
		t.Fatalf("deliveries %v, want each of %v twice", got, want)
	}
	for _, id := range want {
		if count[id] != 2 {
			t.Fatalf("event %d delivered %d times, want 2", id, count[id])
		}
	}
}
