package ingest

import (
	"context"
	"time"

	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
)

// orderedDepth is how many fetched files may wait for their names before
// the poller waits for the store.
const orderedDepth = 32

// ordered stores what a poller fetched in fetch order, each batch once the
// names of its killmails are answered or its wait (names.Resolver.Wait,
// counted from its fetch) has passed: the lookups of the next files run
// while one waits, so that a slow ESI costs the feed at most one wait,
// not one per killmail, and a cursor is never stored before the killmails
// it follows.
type ordered struct {
	names *names.Resolver
	jobs  chan orderedJob
	done  chan struct{}
}

type orderedJob struct {
	ready    <-chan struct{}
	deadline time.Time
	store    func(ctx context.Context) bool
}

// startOrdered starts the storing goroutine; it ends when ctx is done.
func startOrdered(ctx context.Context, res *names.Resolver) *ordered {
	o := &ordered{names: res, jobs: make(chan orderedJob, orderedDepth), done: make(chan struct{})}
	go o.run(ctx)
	return o
}

func (o *ordered) run(ctx context.Context) {
	defer close(o.done)
	for {
		var j orderedJob
		select {
		case j = <-o.jobs:
		case <-ctx.Done():
			return
		}
		if d := time.Until(j.deadline); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-j.ready:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if !j.store(names.WithWarmed(ctx)) {
			return
		}
	}
}

// add queues kms (nil for a file that holds none) with store, which stores
// them; it waits while the queue is full and reports false once ctx is
// done or the storing goroutine ended.
func (o *ordered) add(ctx context.Context, kms []killmail.Killmail, store func(ctx context.Context) bool) bool {
	j := orderedJob{ready: o.names.Start(kms), deadline: time.Now().Add(o.names.Wait()), store: store}
	select {
	case o.jobs <- j:
		return true
	case <-ctx.Done():
	case <-o.done:
	}
	return false
}

// wait waits for the storing goroutine to end (after ctx is done).
func (o *ordered) wait() { <-o.done }
