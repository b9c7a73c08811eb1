package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// schedulerActor sends the store CollectGarbage every gcInterval and
// FlushOffsets every flushInterval, with Proto.Actor's timer scheduler.
type schedulerActor struct {
	store         *actor.PID
	gcInterval    time.Duration
	flushInterval time.Duration
	logger        *slog.Logger
	cancel        []scheduler.CancelFunc
}

func newScheduler(store *actor.PID, gc, flush time.Duration, logger *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &schedulerActor{store: store, gcInterval: gc, flushInterval: flush, logger: logger}
	}
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		timers := scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
		s.cancel = append(s.cancel,
			timers.SendRepeatedly(s.gcInterval, s.gcInterval, s.store, &CollectGarbage{}),
			timers.SendRepeatedly(s.flushInterval, s.flushInterval, s.store, &FlushOffsets{}))
	case *actor.Stopping, *actor.Restarting:
		for _, c := range s.cancel {
			c()
		}
		s.cancel = nil
	case *actor.Stopped:
	default:
		s.logger.Warn("scheduler: unknown message", "type", typeName(msg))
	}
}
