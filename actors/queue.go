package actors

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Queue is an in-process subscriber whose buffer grows only while events
// wait, up to a limit, instead of being allocated up front like a
// Subscription's channel: an idle Queue costs a few hundred bytes, which
// matters for thousands of websocket connections. Ready signals that events
// are waiting (or that the queue ended); Take moves them out, in event_id
// order. A Queue started with a notify function calls it instead (from
// PubSub's goroutine: it must not block).
type Queue struct {
	membership
	limit  int
	ready  chan struct{}
	notify func()
	// accept, when set, is asked (on PubSub's goroutine) about every
	// event before it is queued: an event it refuses costs the
	// subscriber nothing (see SetFilter).
	accept atomic.Pointer[func(*KillmailInserted) bool]
	// prepare, when set, is called (on PubSub's goroutine) with every
	// event queued, before the queue signals (see SetPrepare).
	prepare atomic.Pointer[func(*KillmailInserted)]

	mu     sync.Mutex
	events []*KillmailInserted // in inline while it fits
	ended  bool
	err    error
	// inline holds the waiting events of the usual hand-over, one or two:
	// in the Queue itself, not in an array of its own, which PubSub and the
	// reader would each touch for every event (thousands of queues, each
	// cold by its next event).
	inline [2]*KillmailInserted
}

// SubscribeQueue starts a Queue holding at most limit waiting events (0
// means DefaultSubscriptionBuffer) and following topics; more waiting
// events end it as a slow consumer. When notify is set it is called
// whenever Ready would receive a value, and Ready is nil: a connection
// with nothing to do then needs no goroutine waiting on a channel.
func (s *Service) SubscribeQueue(ctx context.Context, limit int, notify func(), topics ...string) (*Queue, error) {
	if limit <= 0 {
		limit = DefaultSubscriptionBuffer
	}
	q := &Queue{limit: limit, notify: notify}
	q.events = q.inline[:0]
	if notify == nil {
		q.ready = make(chan struct{}, 1)
	}
	q.membership = membership{svc: s, self: q}
	if err := q.Add(ctx, topics...); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// deliver queues what fits; an overflow ends the queue after those.
func (q *Queue) deliver(_ actor.Context, evs []*KillmailInserted) bool {
	if f := q.accept.Load(); f != nil && len(evs) == 1 {
		if !(*f)(evs[0]) { // the usual case, without a copy
			return true
		}
	} else if f != nil {
		kept := make([]*KillmailInserted, 0, len(evs))
		for _, ev := range evs {
			if (*f)(ev) {
				kept = append(kept, ev)
			}
		}
		if len(kept) == 0 {
			return true
		}
		evs = kept
	}
	if p := q.prepare.Load(); p != nil {
		for _, ev := range evs {
			(*p)(ev)
		}
	}
	q.mu.Lock()
	if q.ended {
		q.mu.Unlock()
		return true
	}
	fit := min(len(evs), q.limit-len(q.events))
	q.events = append(q.events, evs[:fit]...)
	q.mu.Unlock()
	if fit > 0 {
		q.signal()
	}
	return fit == len(evs)
}

func (q *Queue) closed(err error) {
	q.mu.Lock()
	if q.ended {
		q.mu.Unlock()
		return
	}
	q.ended, q.err = true, err
	q.mu.Unlock()
	q.signal()
}

func (q *Queue) signal() {
	if q.notify != nil {
		q.notify()
		return
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// SetFilter makes the queue keep only the published events accept
// returns true for (nil: every event). PubSub calls accept on its own
// goroutine, for every event of the queue's topics: it must be quick and
// must not block. An event published after SetFilter returns is judged by
// the new filter. A subscriber that narrows its topics' events with a
// predicate (selection.Predicate over KillmailInserted.Facts) wakes only
// for the events it wants.
func (q *Queue) SetFilter(accept func(*KillmailInserted) bool) {
	if accept == nil {
		q.accept.Store(nil)
		return
	}
	q.accept.Store(&accept)
}

// SetPrepare makes the queue call prepare with every event it is handed
// that its filter keeps, on PubSub's goroutine, before the event is queued
// (nil: none). A subscriber that frames events with
// KillmailInserted.Encoded does it there: the first subscriber of an event
// builds the shared frame on PubSub's goroutine while the writers write
// the events before it, and the others find it built. prepare must be
// quick once the work is done, and must not block.
func (q *Queue) SetPrepare(prepare func(*KillmailInserted)) {
	if prepare == nil {
		q.prepare.Store(nil)
		return
	}
	q.prepare.Store(&prepare)
}

// Ready receives a value when events are waiting or the queue ended (nil
// for a Queue with a notify function).
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take appends the waiting events to dst and returns it. ended says that
// no more events will come (err says why: nil after Close,
// ErrSlowConsumer after an overflow, ErrStopped when the service stopped);
// the events returned with it were waiting before it ended.
func (q *Queue) Take(dst []*KillmailInserted) (events []*KillmailInserted, ended bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.events...)
	clear(q.events)
	q.events = q.inline[:0] // a burst's array goes
	return dst, q.ended, q.err
}

// Err says why the queue ended (see Take); nil while it runs.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}
