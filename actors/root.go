package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Supervision of the root's children: a child that panics is restarted, at
// most maxRestarts times within restartWindow; past that it is stopped.
const (
	maxRestarts   = 10
	restartWindow = 10 * time.Second
)

func supervisorStrategy(logger *slog.Logger) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(maxRestarts, restartWindow, func(reason any) actor.Directive {
		logger.Error("actor failed, restarting", "reason", reason)
		return actor.RestartDirective
	})
}

// rootActor spawns and supervises PubSub, KillmailStore and Scheduler.
type rootActor struct {
	cfg      rootConfig
	children *children
}

type rootConfig struct {
	store func(pubsub *actor.PID) actor.Producer
	// storeDispatcher runs the store's mailbox; nil means Proto.Actor's
	// default (a goroutine per wake-up).
	storeDispatcher actor.Dispatcher
	pubsub          actor.Producer
	scheduler       func(store *actor.PID) actor.Producer
	// wired, when set, runs once the children are spawned (an edge's
	// PubSub learns its store).
	wired func(ctx actor.Context, ch *children)
}

// whereAreChildren asks the root for its children. Reply: *children.
type whereAreChildren struct{}

type children struct {
	pubsub, store, scheduler *actor.PID
}

func (r *rootActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		pubsub, err1 := ctx.SpawnNamed(actor.PropsFromProducer(r.cfg.pubsub), "pubsub")
		var opts []actor.PropsOption
		if r.cfg.storeDispatcher != nil {
			opts = append(opts, actor.WithDispatcher(r.cfg.storeDispatcher))
		}
		store, err2 := ctx.SpawnNamed(actor.PropsFromProducer(r.cfg.store(pubsub), opts...), "store")
		sched, err3 := ctx.SpawnNamed(actor.PropsFromProducer(r.cfg.scheduler(store)), "scheduler")
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				panic(err) // names are fixed: only a second root could clash
			}
		}
		r.children = &children{pubsub: pubsub, store: store, scheduler: sched}
		if r.cfg.wired != nil {
			r.cfg.wired(ctx, r.children)
		}
	case *whereAreChildren:
		ctx.Respond(r.children)
	}
}
