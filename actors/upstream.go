package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/killfeed/killfeed/eventlog"
)

// Upstream makes a Service the edge of another node (the core) that owns
// the log: its store actor answers the store messages by asking the core,
// and its PubSub is fed by the core, one upstream subscription per topic
// however many local subscribers follow it.
type Upstream struct {
	// Store produces the actor that stands in for the KillmailStore. It
	// answers the store messages (FetchForClient, FetchOneEvent,
	// PeekForClient, FetchSince, AdvanceClient, InsertKillmail) like the
	// KillmailStore does, and FollowTopics (reply *FollowTopicsResult)
	// and UnfollowTopics from PubSub. It publishes what the core pushes
	// by sending *KillmailInserted to pubsub, in event_id order.
	Store func(pubsub *actor.PID) actor.Producer
	// Stats answers Service.Stats.
	Stats func() eventlog.Stats
}

// FollowTopics asks an edge's store to have the core push the events of
// Topics. PubSub sends it before it adds the first local subscriber of a
// topic and adds the subscriber only once it is answered, so that every
// event the core publishes after the subscribe returns reaches it.
// Reply: *FollowTopicsResult.
type FollowTopics struct{ Topics []string }

// FollowTopicsResult answers FollowTopics.
type FollowTopicsResult struct{ Err error }

// UnfollowTopics tells an edge's store that Topics lost their last local
// subscriber. Fire-and-forget.
type UnfollowTopics struct{ Topics []string }

// DropSubscribers makes PubSub end every subscriber with Err (an edge that
// lost its core for too long ends them with ErrRestarted: they resume by
// event_id elsewhere). Fire-and-forget.
type DropSubscribers struct{ Err error }

// StartEdge spawns the actor tree of an edge: no local log, the store
// produced by up.Store, and a PubSub that follows topics upstream through
// that store.
func StartEdge(cfg Config, up Upstream) (*Service, error) {
	if up.Store == nil || up.Stats == nil {
		return nil, errors.New("start edge: Upstream.Store and Upstream.Stats are required")
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	// The store's PID, for PubSub (and its later incarnations) once the
	// root spawned both.
	store := new(atomic.Pointer[actor.PID])
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	props := actor.PropsFromProducer(func() actor.Actor {
		return &rootActor{cfg: rootConfig{
			pubsub: func() actor.Actor {
				return newUpstreamPubSub(cfg.Topics, cfg.RequestTimeout, logger, store)
			},
			store: up.Store,
			scheduler: func(store *actor.PID) actor.Producer {
				return newScheduler(store, cfg.GCInterval, cfg.FlushInterval, logger)
			},
			wired: func(_ actor.Context, ch *children) { store.Store(ch.store) },
		}}
	}, actor.WithSupervisor(supervisorStrategy(logger)))
	root, err := system.Root.SpawnNamed(props, "killfeed")
	if err != nil {
		system.Shutdown()
		return nil, fmt.Errorf("spawn root: %w", err)
	}
	s := &Service{system: system, root: root, timeout: cfg.RequestTimeout, stats: up.Stats}
	ch, err := request[*children](context.Background(), s, root, &whereAreChildren{})
	if err != nil {
		system.Shutdown()
		return nil, fmt.Errorf("start actors: %w", err)
	}
	s.store, s.pubsub = ch.store, ch.pubsub
	return s, nil
}

func (cfg Config) withDefaults() Config {
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = time.Minute
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Topics == nil {
		cfg.Topics = SystemTopics
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// upstreamPubSub is an edge's PubSub: a pubSub that follows a topic at the
// core (through the store) before adding its first local subscriber, and
// unfollows it when the last one leaves.
type upstreamPubSub struct {
	*pubSub
	store   *atomic.Pointer[actor.PID]
	timeout time.Duration
	// following counts Subscribes waiting for their FollowTopics answer
	// per topic: a topic emptied meanwhile stays followed for them.
	following map[string]int
	emptied   []string // topics that lost their last subscriber, to unfollow
}

func newUpstreamPubSub(topicsOf TopicsFunc, timeout time.Duration, logger *slog.Logger, store *atomic.Pointer[actor.PID]) *upstreamPubSub {
	u := &upstreamPubSub{
		pubSub:    newPubSub(topicsOf, logger)().(*pubSub),
		store:     store,
		timeout:   timeout,
		following: make(map[string]int),
	}
	u.pubSub.emptied = func(t string) {
		if u.following[t] == 0 {
			u.emptied = append(u.emptied, t)
		}
	}
	return u
}

func (u *upstreamPubSub) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *Subscribe:
		u.subscribe(ctx, msg)
	case *DropSubscribers:
		for s := range u.subs {
			u.remove(s, msg.Err)
		}
	default:
		u.pubSub.Receive(ctx)
	}
	u.unfollowEmptied(ctx)
}

func (u *upstreamPubSub) unfollowEmptied(ctx actor.Context) {
	if store := u.store.Load(); len(u.emptied) > 0 && store != nil {
		ctx.Send(store, &UnfollowTopics{Topics: u.emptied})
		u.emptied = nil
	}
}

// subscribe follows the topics nobody here follows yet at the core first,
// then adds the subscriber; the caller's Subscribed waits for both.
func (u *upstreamPubSub) subscribe(ctx actor.Context, msg *Subscribe) {
	var fresh []string
	for _, t := range msg.Topics {
		if _, ok := u.topics[t]; !ok {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		u.pubSub.Receive(ctx)
		return
	}
	store := u.store.Load()
	if store == nil {
		ctx.Respond(ErrUnavailable)
		return
	}
	for _, t := range fresh {
		u.following[t]++
	}
	sender := ctx.Sender()
	f := ctx.RequestFuture(store, &FollowTopics{Topics: fresh}, u.timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		for _, t := range fresh {
			if u.following[t]--; u.following[t] <= 0 {
				delete(u.following, t)
			}
		}
		r, err := ReplyAs[*FollowTopicsResult](res, err)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			if sender != nil {
				ctx.Send(sender, err)
			}
			// Topics followed for nobody: let them go again.
			for _, t := range fresh {
				if _, ok := u.topics[t]; !ok && u.following[t] == 0 {
					u.emptied = append(u.emptied, t)
				}
			}
			u.unfollowEmptied(ctx)
			return
		}
		u.pubSub.subscribe(msg.Subscriber, msg.Topics)
		if sender != nil {
			ctx.Send(sender, &Subscribed{})
		}
	})
}
