package actors

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// insertPause is the longest a reader of bodies on disk waits, before
// each chunk it reads, for the inserts in flight to finish (see
// insertGate).
const insertPause = 2 * time.Millisecond

// insertGate is how readers of bodies left on disk make way for durable
// inserts. An insert is in flight from the store handing it on until its
// answer is sent; before each chunk of bodies (eventlog.BodyChunk) a reader
// waits until none is, or for at most max. On two cores, a reader catching
// up from far back would otherwise hold one CPU while the garbage collector
// (fed by the bodies it reads) holds the other, and an insert would wait
// for a CPU at every step: the actor, the log, Pebble's commit and WAL
// goroutines, the sync's return, the answer. An insert waits for no reader:
// readers pause between chunks, never in one. What it costs the readers: a
// wait of at most max per chunk, only while inserts are in flight.
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

// wait returns once no insert is in flight, or after max. It yields the
// CPU first: an insert that waits for one to reach the store is then
// in flight.
func (g *insertGate) wait() {
	runtime.Gosched()
	if g.inFlight.Load() == 0 {
		return
	}
	g.mu.Lock()
	drained := g.drained
	g.mu.Unlock()
	if drained == nil {
		return
	}
	t := time.NewTimer(g.max)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
	}
}
