package actors_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// startOnDisk starts the actors over a Log on a Pebble store in dir, which
// wrap wraps unless it is nil. stop stops them and closes the Log.
func startOnDisk(tb testing.TB, dir string, wrap func(*pebblestore.Store) eventlog.Store) (svc *actors.Service, stop func()) {
	tb.Helper()
	store, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var s eventlog.Store = store
	if wrap != nil {
		s = wrap(store)
	}
	log, err := eventlog.Open(eventlog.Config{}, s)
	if err != nil {
		tb.Fatal(err)
	}
	if svc, err = actors.Start(log, true, actors.Config{}); err != nil {
		tb.Fatal(err)
	}
	return svc, func() {
		svc.Stop()
		if err := log.Close(); err != nil {
			tb.Error(err)
		}
	}
}

// gatedStore is a Pebble store whose body reads wait for gate to close.
type gatedStore struct {
	*pebblestore.Store
	gate    chan struct{}
	reading chan struct{} // closed when the first body read waits
}

func (s *gatedStore) Bodies() (eventlog.Bodies, error) {
	v, err := s.Store.Bodies()
	if err != nil {
		return nil, err
	}
	return &gatedBodies{Bodies: v, s: s}, nil
}

type gatedBodies struct {
	eventlog.Bodies
	s *gatedStore
}

func (v *gatedBodies) Body(id uint64) ([]byte, error) {
	select {
	case <-v.s.reading:
	default:
		close(v.s.reading)
	}
	<-v.s.gate
	return v.Bodies.Body(id)
}

// A reader whose killmails are on disk (every reader catching up after a
// restart) has them read off the KillmailStore actor: inserts, and readers
// served from memory, go on while the disk read is under way.
func TestDiskReadsHoldUpNoInsert(t *testing.T) {
	dir := t.TempDir()
	kms := fixture.Killmails()[:20]
	svc, stop := startOnDisk(t, dir, nil)
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	stop()

	gated := &gatedStore{gate: make(chan struct{}), reading: make(chan struct{})}
	svc, stop = startOnDisk(t, dir, func(s *pebblestore.Store) eventlog.Store { // every body on disk
		gated.Store = s
		return gated
	})
	opened := true
	defer func() {
		if opened {
			close(gated.gate)
		}
		stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	system := kms[0].SystemID
	type fetched struct {
		b   eventlog.Batch
		err error
	}
	slow := make(chan fetched, 1)
	go func() {
		b, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.Of([]int64{system})})
		slow <- fetched{b, err}
	}()
	select {
	case <-gated.reading:
	case <-ctx.Done():
		t.Fatal("the fetch never read a body from disk")
	}

	// The disk read waits. The actor serves an insert and a read of it.
	km := kms[0]
	km.ID = 1 << 40
	res, err := svc.Insert(ctx, []killmail.Killmail{km}, nil)
	if err != nil {
		t.Fatalf("insert during the disk read: %v", err)
	}
	head, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.Of([]int64{system}), After: res[0].EventID - 1})
	if err != nil || len(head.Events) != 1 || string(head.Events[0].Killmail) != string(km.JSON) {
		t.Fatalf("read from memory during the disk read: %v %v", head.Events, err)
	}
	select {
	case f := <-slow:
		t.Fatalf("the disk read finished with its gate shut: %v", f.err)
	default:
	}

	close(gated.gate)
	opened = false
	f := <-slow
	if f.err != nil {
		t.Fatal(f.err)
	}
	var want []string
	for _, k := range kms {
		if k.SystemID == system {
			want = append(want, string(k.JSON))
		}
	}
	if len(f.b.Events) != len(want) {
		t.Fatalf("%d events from disk, want %d", len(f.b.Events), len(want))
	}
	for i, ev := range f.b.Events {
		if string(ev.Killmail) != want[i] {
			t.Fatalf("event %d: killmail %.60s, want %.60s", ev.ID, ev.Killmail, want[i])
		}
	}
}

// A fetch whose asker gave up before the store got to it moves no offsets:
// the client's next fetch returns the events the abandoned one would have.
func TestAbandonedFetchMovesNoOffsets(t *testing.T) {
	_, svc := startInMemory(t)
	kms := fixture.Killmails()[:3]
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	systems := []int64{kms[0].SystemID, kms[1].SystemID, kms[2].SystemID}

	svc.System().Root.Send(svc.Store(), &actors.Stall{D: 500 * time.Millisecond})
	give := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := svc.FetchForClient(give(), "gone", selection.Of(systems)); err != actors.ErrUnavailable {
		t.Fatalf("fetch behind a stalled store: err = %v, want ErrUnavailable", err)
	}
	if _, _, _, err := svc.FetchOneEvent(give(), "gone-one", selection.Of(systems)); err != actors.ErrUnavailable {
		t.Fatalf("fetch one behind a stalled store: err = %v, want ErrUnavailable", err)
	}
	b, err := svc.FetchForClient(context.Background(), "gone", selection.Of(systems)) // waits out the stall
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 {
		t.Errorf("after the abandoned fetch: %d events, want 3", len(b.Events))
	}
	ev, _, ok, err := svc.FetchOneEvent(context.Background(), "gone-one", selection.Of(systems))
	if err != nil || !ok || ev.ID != 1 {
		t.Errorf("after the abandoned fetch one: event %d, ok %v, err %v; want event 1", ev.ID, ok, err)
	}
}

// FlushOffsets as a request answers once the offsets are on disk: a store
// opened on the same directory without a clean close sees them.
func TestFlushOffsetsIsDurable(t *testing.T) {
	dir := t.TempDir()
	svc, stop := startOnDisk(t, dir, nil)
	kms := fixture.Killmails()[:5]
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FetchForClient(context.Background(), "reader", selection.Of([]int64{eventlog.AllSystems})); err != nil {
		t.Fatal(err)
	}
	if err := svc.FlushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The files as the kernel has them now are what a kill -9 leaves.
	checkpoint := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(checkpoint, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	stop()
	svc, stop = startOnDisk(t, checkpoint, nil)
	defer stop()
	b, err := svc.FetchForClient(context.Background(), "reader", selection.Of([]int64{eventlog.AllSystems}))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 0 {
		t.Errorf("reader after a crash: %d events again, want 0", len(b.Events))
	}
}

// countingStore is a Pebble store that counts the batches reading bodies
// at once; every body read waits for gate to close.
type countingStore struct {
	*pebblestore.Store
	gate         chan struct{}
	mu           sync.Mutex
	active, most int
	reachedLimit chan struct{} // closed when limit batches read at once
	reached      bool
	limit        int
}

func (s *countingStore) Bodies() (eventlog.Bodies, error) {
	v, err := s.Store.Bodies()
	if err != nil {
		return nil, err
	}
	return &countedBodies{Bodies: v, s: s}, nil
}

// countedBodies is one batch's view: it counts as reading from its first
// body read until it is closed.
type countedBodies struct {
	eventlog.Bodies
	s       *countingStore
	reading bool
}

func (v *countedBodies) Body(id uint64) ([]byte, error) {
	if !v.reading {
		v.reading = true
		s := v.s
		s.mu.Lock()
		s.active++
		s.most = max(s.most, s.active)
		if s.active == s.limit && !s.reached {
			s.reached = true
			close(s.reachedLimit)
		}
		s.mu.Unlock()
	}
	<-v.s.gate
	return v.Bodies.Body(id)
}

func (v *countedBodies) Close() error {
	if v.reading {
		v.s.mu.Lock()
		v.s.active--
		v.s.mu.Unlock()
	}
	return v.Bodies.Close()
}

// Readers catching up from disk all at once (every client, after a
// restart) read bodies a few at a time, so that inserts find a CPU; the
// others wait their turn and are then answered in full.
func TestDiskReadsAreBounded(t *testing.T) {
	dir := t.TempDir()
	kms := fixture.Killmails()[:20]
	svc, stop := startOnDisk(t, dir, nil)
	if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	limit := max(1, runtime.GOMAXPROCS(0)/2)
	counting := &countingStore{gate: make(chan struct{}), reachedLimit: make(chan struct{}), limit: limit}
	svc, stop = startOnDisk(t, dir, func(s *pebblestore.Store) eventlog.Store {
		counting.Store = s
		return counting
	})
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	readers := 2*limit + 2
	errs := make(chan error, readers)
	for range readers {
		go func() {
			b, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.All()})
			if err == nil && len(b.Events) != len(kms) {
				err = fmt.Errorf("%d events, want %d", len(b.Events), len(kms))
			}
			errs <- err
		}()
	}
	select {
	case <-counting.reachedLimit:
	case <-ctx.Done():
		t.Fatal("no read of bodies began")
	}
	// An insert answered means the store has handled every fetch before
	// it and handed its disk read on.
	km := kms[0]
	km.ID = 1 << 40
	if _, err := svc.Insert(ctx, []killmail.Killmail{km}, nil); err != nil {
		t.Fatal(err)
	}
	close(counting.gate)
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if counting.most > limit {
		t.Fatalf("%d reads of bodies at once, want at most %d", counting.most, limit)
	}
}
