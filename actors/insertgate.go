package actors

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// insertPause is the longest a reader of bodies on disk waits at once
	// for the inserts in flight to finish (see insertGate).
	insertPause = 2 * time.Millisecond
	// yieldEvery is how many bodies a reader reads between two yields of
	// the CPU, or after a wait that ran out.
	yieldEvery = 16
)

// insertGate is how readers of bodies left on disk make way for durable
// inserts. An insert is in flight from the store handing it on until it
// is answered; before each body it reads, a reader waits until none is
// (for at most max, then it reads yieldEvery bodies before it waits
// again), and it yields the CPU every yieldEvery bodies. On two cores, a
// reader catching up from far back would otherwise hold one CPU while the
// garbage collector (fed by the bodies it reads) holds the other, and an
// insert would wait for a CPU at every step: the actor, the log, Pebble's
// commit and WAL goroutines, the sync's return, the answer. An insert
// waits for no reader: a reader pauses between two bodies, never in one.
// What it costs the readers: they stand still while inserts are in
// flight, and read on when max runs out, so that a stream of inserts
// that never drains slows them but does not stop them.
type insertGate struct {
	max      time.Duration
	inFlight atomic.Int32 // read without mu, to let readers by when 0
	mu       sync.Mutex
	drained  chan struct{} // closed when inFlight drops to 0; nil at 0
}

func newInsertGate(max time.Duration) *insertGate { return &insertGate{max: max} }

// enter counts an insert in flight.
func (g *insertGate) enter() {
	g.mu.Lock()
	if g.inFlight.Add(1) == 1 {
		g.drained = make(chan struct{})
	}
	g.mu.Unlock()
}

// leave ends an insert counted by enter.
func (g *insertGate) leave() {
	g.mu.Lock()
	if g.inFlight.Add(-1) == 0 {
		close(g.drained)
		g.drained = nil
	}
	g.mu.Unlock()
}

// wait returns true once no insert is in flight, false after max.
func (g *insertGate) wait() bool {
	g.mu.Lock()
	drained := g.drained
	g.mu.Unlock()
	if drained == nil {
		return true
	}
	t := time.NewTimer(g.max)
	defer t.Stop()
	select {
	case <-drained:
		// Let what the last insert readied (its answer's receiver) run
		// first.
		runtime.Gosched()
		return true
	case <-t.C:
		return false
	}
}

// pacer returns what one reader calls before each body it reads.
func (g *insertGate) pacer() func() {
	n, free := 0, 0 // bodies since the last yield; left to read without waiting
	return func() {
		if free > 0 {
			free--
		} else if g.inFlight.Load() > 0 {
			n = 0
			if !g.wait() {
				free = yieldEvery
			}
			return
		}
		if n++; n == yieldEvery {
			n = 0
			runtime.Gosched()
		}
	}
}
