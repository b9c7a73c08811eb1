package transport

import (
	"runtime"
	"sync"
)

// drainPool writes published events to idle connections without a
// goroutine per connection. PubSub hands an event to every subscriber in
// turn; starting a worker goroutine for each, which then blocks in its own
// write, costs more than the write itself when thousands of connections
// follow the same system. Instead the sessions queue here, first come first
// served, and up to GOMAXPROCS drainers take them: each writes a session's
// waiting events with one non-blocking write. Whatever would block (a full
// socket buffer, a store round trip, a close) goes on to the session's own
// worker. Drainers start when sessions queue and exit when none is left, so
// an idle server runs none.
type drainPool struct {
	mu      sync.Mutex
	queue   []*session
	head    int
	running int
	max     int
}

// drainYieldEvery is how many sessions a drainer writes between yields.
const drainYieldEvery = 16

// drainQueueKeep is the largest queue capacity kept once it empties.
const drainQueueKeep = 16 << 10

func newDrainPool() *drainPool {
	return &drainPool{max: runtime.GOMAXPROCS(0)}
}

// submit queues s, whose caller won it the right to work (s.working).
func (p *drainPool) submit(s *session) {
	p.mu.Lock()
	p.queue = append(p.queue, s)
	start := p.running < p.max
	if start {
		p.running++
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

// run drains sessions until none waits, yielding every few sessions so
// that the store and PubSub run between the writes of a long burst, not
// only after them (a drainer's non-blocking writes never park it).
func (p *drainPool) run() {
	for n := 1; ; n++ {
		if n%drainYieldEvery == 0 {
			runtime.Gosched()
		}
		p.mu.Lock()
		if p.head == len(p.queue) {
			if cap(p.queue) > drainQueueKeep {
				p.queue = nil
			} else {
				p.queue = p.queue[:0]
			}
			p.head = 0
			p.running--
			p.mu.Unlock()
			return
		}
		s := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		p.mu.Unlock()
		s.drain()
	}
}
