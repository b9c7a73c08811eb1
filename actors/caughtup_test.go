package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// A fetch with nothing new is answered from the log without the store
// actor: it is answered while the store is stalled, and a fetch with
// something to return still waits for the store.
func TestCaughtUpFetchSkipsTheStore(t *testing.T) {
	log, svc := startInMemory(t)
	kms := fixture.Killmails()[:2]
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	sel := selection.Of([]int64{kms[0].SystemID})
	if b, err := svc.FetchForClient(context.Background(), "reader", sel); err != nil || len(b.Events) == 0 {
		t.Fatalf("first fetch: %d events, err %v", len(b.Events), err)
	}
	if _, err := svc.FetchForClient(context.Background(), "behind", selection.Of([]int64{kms[1].SystemID})); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(fixture.Killmails()[2:3], nil); err != nil { // behind has one more to read
		t.Fatal(err)
	}
	if _, err := log.Append([]killmail.Killmail{inSystem(fixture.Killmails()[3], kms[1].SystemID)}, nil); err != nil {
		t.Fatal(err)
	}

	svc.System().Root.Send(svc.Store(), &actors.Stall{D: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := svc.FetchForClient(ctx, "reader", sel)
	if err != nil {
		t.Fatalf("caught-up fetch behind a stalled store: %v", err)
	}
	if len(b.Events) != 0 || b.Head != log.Head() {
		t.Errorf("caught-up fetch: %d events, head %d; want none, head %d", len(b.Events), b.Head, log.Head())
	}
	ev, _, ok, err := svc.FetchOneEvent(ctx, "reader", sel)
	if err != nil || ok {
		t.Errorf("caught-up fetch one behind a stalled store: event %d, ok %v, err %v", ev.ID, ok, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := svc.FetchForClient(short, "behind", selection.Of([]int64{kms[1].SystemID})); err != actors.ErrUnavailable {
		t.Fatalf("fetch with something new behind a stalled store: err = %v, want ErrUnavailable", err)
	}
	b, err = svc.FetchForClient(context.Background(), "behind", selection.Of([]int64{kms[1].SystemID})) // waits out the stall
	if err != nil || len(b.Events) != 1 {
		t.Fatalf("after the stall: %d events, err %v; want 1", len(b.Events), err)
	}
}

// startInMemory starts the actors over a memory log, stopped when the test
// ends.
func startInMemory(t *testing.T) (*eventlog.Log, *actors.Service) {
	t.Helper()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop(); _ = log.Close() })
	return log, svc
}

func inSystem(km killmail.Killmail, system int64) killmail.Killmail {
	km.SystemID = system
	return km
}
