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
	queue   sessionQueue
	running int
	max     int
}

// drainYieldEvery is how many sessions a drainer writes between yields.
const drainYieldEvery = 16

func newDrainPool() *drainPool {
	return &drainPool{max: runtime.GOMAXPROCS(0)}
}

// submit queues s, whose caller won it the right to work (s.working).
func (p *drainPool) submit(s *session) {
	p.mu.Lock()
	p.queue.push(s)
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
		s := p.queue.pop()
		if s == nil {
			p.running--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		s.drain()
	}
}

// sessionQueue is a FIFO of sessions.
type sessionQueue struct {
	items []*session
	head  int
}

// sessionQueueKeep is the largest capacity kept once the queue empties,
// and how far the taken prefix may grow before it is dropped.
const sessionQueueKeep = 16 << 10

func (q *sessionQueue) push(s *session) { q.items = append(q.items, s) }

// pop takes the oldest session, nil when none waits.
func (q *sessionQueue) pop() *session {
	if q.head == len(q.items) {
		if cap(q.items) > sessionQueueKeep {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
		return nil
	}
	s := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head >= sessionQueueKeep && q.head > len(q.items)/2 {
		// A queue that never empties (a long, heavy burst) drops what was
		// taken rather than growing forever.
		left := copy(q.items, q.items[q.head:])
		clear(q.items[left:])
		q.items, q.head = q.items[:left], 0
	}
	return s
}
