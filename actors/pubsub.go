package actors

import (
	"log/slog"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/killfeed/killfeed/eventlog"
)

// SystemTopic is the topic of a solar system's killmails.
func SystemTopic(systemID int64) string { return "system:" + strconv.FormatInt(systemID, 10) }

// TopicsFunc lists the topics an event is published on.
type TopicsFunc func(eventlog.Event) []string

// SystemTopics publishes each event on its system's topic only.
func SystemTopics(ev eventlog.Event) []string { return []string{SystemTopic(ev.SystemID)} }

// Subscriber receives published events. PubSub calls it from its own
// goroutine only; implementations must not block.
type Subscriber interface {
	// deliver hands over events, in event_id order; false means the
	// subscriber cannot keep up and is dropped. evs is PubSub's: keep the
	// events, not the slice.
	deliver(ctx actor.Context, evs []*KillmailInserted) bool
	// closed tells the subscriber it was removed; err is nil after an
	// Unsubscribe of everything. It may come more than once (a subscriber
	// that outlived a PubSub restart and subscribed again); the first
	// counts.
	closed(err error)
}

// pubSub fans events out per topic. An event reaches each subscriber once,
// however many of its topics the subscriber follows.
type pubSub struct {
	topicsOf TopicsFunc
	logger   *slog.Logger
	topics   map[string]map[Subscriber]struct{}
	subs     map[Subscriber]map[string]struct{}
	// Scratch of publish, empty between calls.
	sent   map[Subscriber]struct{}
	shares map[Subscriber][]*KillmailInserted
	// emptied, when set, is told of every topic that lost its last
	// subscriber (an edge unfollows it upstream).
	emptied func(topic string)
}

func newPubSub(topicsOf TopicsFunc, logger *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &pubSub{
			topicsOf: topicsOf,
			logger:   logger,
			topics:   make(map[string]map[Subscriber]struct{}),
			subs:     make(map[Subscriber]map[string]struct{}),
			sent:     make(map[Subscriber]struct{}),
			shares:   make(map[Subscriber][]*KillmailInserted),
		}
	}
}

func (p *pubSub) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
	case *actor.Restarting:
		// The next incarnation starts with no subscribers: tell these, so
		// that they subscribe again instead of waiting for nothing.
		for s := range p.subs {
			s.closed(ErrRestarted)
		}
	case *Crash:
		panic("injected crash")
	case *actor.Stopping:
		for s := range p.subs {
			s.closed(ErrStopped)
		}
		clear(p.subs)
		clear(p.topics)
	case *publishWake:
		evs, overflowed := msg.box.take()
		if overflowed {
			// Events never reached the subscribers: end them all as slow
			// consumers, so that they resume by event_id, with no gap.
			p.logger.Error("pubsub fell too far behind; dropping every subscriber", "limit", outboxMax)
			for s := range p.subs {
				p.remove(s, ErrSlowConsumer)
			}
		}
		p.publish(ctx, evs)
	case *KillmailInserted:
		p.publish(ctx, []eventlog.Event{msg.Event()})
	case *Subscribe:
		p.subscribe(msg.Subscriber, msg.Topics)
		ctx.Respond(&Subscribed{})
	case *Unsubscribe:
		if len(msg.Topics) > 0 {
			p.unsubscribe(msg.Subscriber, msg.Topics)
		} else if _, ok := p.subs[msg.Subscriber]; ok {
			p.remove(msg.Subscriber, nil)
		}
		if ctx.Sender() != nil {
			ctx.Respond(&Unsubscribed{})
		}
	case *actor.Stopped:
	default:
		p.logger.Warn("pubsub: unknown message", "type", typeName(msg))
	}
}

func (p *pubSub) subscribe(s Subscriber, topics []string) {
	mine := p.subs[s]
	if mine == nil {
		mine = make(map[string]struct{}, len(topics))
		p.subs[s] = mine
	}
	for _, t := range topics {
		mine[t] = struct{}{}
		set := p.topics[t]
		if set == nil {
			set = make(map[Subscriber]struct{})
			p.topics[t] = set
		}
		set[s] = struct{}{}
	}
}

func (p *pubSub) unsubscribe(s Subscriber, topics []string) {
	mine := p.subs[s]
	for _, t := range topics {
		delete(mine, t)
		p.dropFromTopic(s, t)
	}
}

// remove drops a subscriber from every topic and tells it why.
func (p *pubSub) remove(s Subscriber, err error) {
	for t := range p.subs[s] {
		p.dropFromTopic(s, t)
	}
	delete(p.subs, s)
	s.closed(err)
}

func (p *pubSub) dropFromTopic(s Subscriber, t string) {
	if set := p.topics[t]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(p.topics, t)
			if p.emptied != nil {
				p.emptied(t)
			}
		}
	}
}

// publish hands evs to their subscribers: each subscriber gets its share
// of evs in one deliver, and an event once however many of its topics it
// follows.
func (p *pubSub) publish(ctx actor.Context, evs []eventlog.Event) {
	var slow []Subscriber
	hand := func(s Subscriber, share []*KillmailInserted) {
		if !s.deliver(ctx, share) {
			slow = append(slow, s)
		}
	}
	if len(evs) == 1 {
		// The usual case: every subscriber gets the same one-event share.
		ev := evs[0]
		one := []*KillmailInserted{inserted(ev)}
		topics := p.topicsOf(one[0].Event()) // with its facts
		for _, t := range topics {
			for s := range p.topics[t] {
				if len(topics) > 1 {
					if _, dup := p.sent[s]; dup {
						continue // followed through another topic of ev
					}
					p.sent[s] = struct{}{}
				}
				hand(s, one)
			}
		}
		clear(p.sent)
	} else {
		var order []Subscriber // first-seen order
		for _, ev := range evs {
			msg := inserted(ev)
			for _, t := range p.topicsOf(msg.Event()) {
				for s := range p.topics[t] {
					mine, seen := p.shares[s]
					if n := len(mine); n > 0 && mine[n-1] == msg {
						continue // followed through another topic of ev
					}
					if !seen {
						order = append(order, s)
					}
					p.shares[s] = append(mine, msg)
				}
			}
		}
		for _, s := range order {
			hand(s, p.shares[s])
		}
		clear(p.shares)
	}
	for _, s := range slow {
		if _, still := p.subs[s]; still {
			p.remove(s, ErrSlowConsumer)
		}
	}
}

// PIDSubscriber delivers events to an actor as *KillmailInserted messages.
// Closed, when set, is called (on the PubSub actor, so it must not block)
// with the reason when PubSub drops the subscription: ErrSlowConsumer, or
// ErrRestarted after PubSub lost its subscribers; nil after Unsubscribe.
type PIDSubscriber struct {
	PID    *actor.PID
	Closed func(error)
}

func (s *PIDSubscriber) deliver(ctx actor.Context, evs []*KillmailInserted) bool {
	for _, ev := range evs {
		ctx.Send(s.PID, ev)
	}
	return true
}

func (s *PIDSubscriber) closed(err error) {
	if s.Closed != nil {
		s.Closed(err)
	}
}
