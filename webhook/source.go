package webhook

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

// Source is the log as a webhook reads it: a client with offsets, read
// without advancing and advanced only once a delivery succeeded.
type Source interface {
	// Join starts the filter's systems that the client has no offset for
	// at the head (a new webhook starts at the next killmail stored) and
	// returns the client's position.
	Join(ctx context.Context, client string, f Filter) (uint64, error)
	// Peek reads up to limit events matching f after the client's offsets,
	// without advancing them.
	Peek(ctx context.Context, client string, f Filter, limit int) (Batch, error)
	// Advance moves the client's offsets for f forward to through.
	Advance(ctx context.Context, client string, f Filter, through uint64) error
	// SetRetention sets how the client takes part in retention.
	SetRetention(client string, r eventlog.Retention) error
	// Head is the newest event id.
	Head() uint64
	// Changed returns a channel closed when an event is stored after the
	// call: take it before a Peek, wait on it after an empty one.
	Changed() <-chan struct{}
}

// Batch is what a Peek read.
type Batch struct {
	// Events match the filter, ascending by ID.
	Events []eventlog.Event
	// Missed says events the client had not read were dropped.
	Missed bool
	// Oldest is the oldest retained event id.
	Oldest uint64
	// Through is how far the read looked: once every event is delivered
	// the offsets advance to it.
	Through uint64
	// More says the read stopped before the head (at its limit, or at the
	// log's scan bound for a filtered read): read again at once.
	More bool
}

// LogSource is the Source over the running store.
type LogSource struct {
	svc  *actors.Service
	wake *notifier
}

var _ Source = (*LogSource)(nil)

// NewLogSource reads svc's log; it learns of new events from topic (the
// topic every event is published on). Close stops it.
func NewLogSource(svc *actors.Service, topic string) *LogSource {
	n := &notifier{ch: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go n.follow(svc, topic)
	return &LogSource{svc: svc, wake: n}
}

// Close stops following new events.
func (s *LogSource) Close() {
	close(s.wake.stop)
	<-s.wake.done
}

// Join implements Source.
func (s *LogSource) Join(_ context.Context, client string, f Filter) (uint64, error) {
	return s.svc.JoinSystems(client, f.Selection.Systems)
}

// Peek implements Source.
func (s *LogSource) Peek(ctx context.Context, client string, f Filter, limit int) (Batch, error) {
	b, err := s.svc.Fetch(ctx, &actors.PeekForClient{ClientID: client, Selection: f.Selection, Limit: limit})
	if err != nil {
		return Batch{}, err
	}
	return Batch{Events: b.Events, Missed: b.Missed, Oldest: b.Oldest, Through: b.Through, More: b.More}, nil
}

// Advance implements Source.
func (s *LogSource) Advance(ctx context.Context, client string, f Filter, through uint64) error {
	return s.svc.Advance(ctx, client, f.Selection.Systems, through)
}

// SetRetention implements Source.
func (s *LogSource) SetRetention(client string, r eventlog.Retention) error {
	return s.svc.SetRetention(client, r)
}

// Head implements Source.
func (s *LogSource) Head() uint64 { return s.svc.Stats().Head }

// Changed implements Source.
func (s *LogSource) Changed() <-chan struct{} { return s.wake.changed() }

// notifier turns the events of one PubSub topic into a broadcast: the
// channel changed returns is closed at the next event.
type notifier struct {
	mu   sync.Mutex
	ch   chan struct{}
	stop chan struct{}
	done chan struct{}
}

func (n *notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// follow subscribes to topic and broadcasts each event; a subscription
// dropped for falling behind is taken again (with a broadcast, since
// events went by unseen).
func (n *notifier) follow(svc *actors.Service, topic string) {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	for ctx.Err() == nil {
		sub, err := svc.SubscribeTopics(ctx, 64, topic)
		if err != nil {
			if errors.Is(err, actors.ErrStopped) || ctx.Err() != nil {
				return
			}
			n.broadcast()
			select {
			case <-n.stop:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		n.broadcast() // events may have come before the subscription
		n.drain(sub)
		sub.Close()
		if errors.Is(sub.Err(), actors.ErrStopped) {
			return
		}
	}
}

// drain broadcasts until the subscription ends or stop.
func (n *notifier) drain(sub *actors.Subscription) {
	for {
		select {
		case <-n.stop:
			return
		case _, ok := <-sub.C:
			if !ok {
				return
			}
			// Take whatever else is queued: one broadcast for a burst.
			for more := true; more; {
				select {
				case _, ok := <-sub.C:
					if !ok {
						n.broadcast()
						return
					}
				default:
					more = false
				}
			}
			n.broadcast()
		}
	}
}
