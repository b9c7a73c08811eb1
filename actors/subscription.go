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
	C   <-chan *KillmailInserted
	ch  chan *KillmailInserted
	svc *Service

	mu  sync.Mutex
	err error
}

func (s *Subscription) deliver(_ actor.Context, ev *KillmailInserted) bool {
	select {
	case s.ch <- ev:
		return true
	default:
		return false
	}
}

func (s *Subscription) closed(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.ch)
}

// Err says why C was closed: nil after Close, ErrSlowConsumer after an
// overflow, ErrStopped when the service stopped.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Add follows more topics. Events published after Add returns reach C.
func (s *Subscription) Add(ctx context.Context, topics ...string) error {
	_, err := request[*Subscribed](ctx, s.svc, s.svc.pubsub, &Subscribe{Subscriber: s, Topics: topics})
	return err
}

// Remove stops following topics.
func (s *Subscription) Remove(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	_, err := request[*Unsubscribed](ctx, s.svc, s.svc.pubsub, &Unsubscribe{Subscriber: s, Topics: topics})
	return err
}

// Close ends the subscription; C is closed once PubSub has let go of it.
func (s *Subscription) Close() {
	s.svc.system.Root.Send(s.svc.pubsub, &Unsubscribe{Subscriber: s})
}
