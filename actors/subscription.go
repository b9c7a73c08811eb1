package actors

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// DefaultSubscriptionBuffer is the channel capacity of a Subscription when
// none is given.
const DefaultSubscriptionBuffer = 1024

// Subscription is an in-process subscriber backed by a bounded channel, the
// counterpart of Phoenix.PubSub.subscribe. Events arrive on C in event_id
// order. C is closed when the subscription ends: after Close, when the
// service stops, or when the buffer overflowed (Err is then ErrSlowConsumer).
type Subscription struct {
	membership
	C  <-chan *KillmailInserted
	ch chan *KillmailInserted

	mu   sync.Mutex
	err  error
	done bool
}

func (s *Subscription) deliver(_ actor.Context, evs []*KillmailInserted) bool {
	for _, ev := range evs {
		select {
		case s.ch <- ev:
		default:
			return false
		}
	}
	return true
}

func (s *Subscription) closed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done, s.err = true, err
	close(s.ch)
}

// Err says why C was closed: nil after Close, ErrSlowConsumer after an
// overflow, ErrStopped when the service stopped.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// membership is how a subscriber follows topics through PubSub.
type membership struct {
	svc  *Service
	self Subscriber
}

// Add follows more topics: every event published on them after Add
// returns reaches the subscriber.
func (m membership) Add(ctx context.Context, topics ...string) error {
	_, err := request[*Subscribed](ctx, m.svc, m.svc.pubsub, &Subscribe{Subscriber: m.self, Topics: topics})
	return err
}

// Remove stops following topics.
func (m membership) Remove(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	_, err := request[*Unsubscribed](ctx, m.svc, m.svc.pubsub, &Unsubscribe{Subscriber: m.self, Topics: topics})
	return err
}

// Close ends the subscription; PubSub lets go of it and tells it so.
func (m membership) Close() {
	m.svc.system.Root.Send(m.svc.pubsub, &Unsubscribe{Subscriber: m.self})
}
