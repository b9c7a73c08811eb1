package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// schedulerActor sends the store CollectGarbage every gcInterval and
// FlushOffsets every flushInterval, with Proto.Actor's timer scheduler.
//
// Each tick is a one-shot timer that the actor re-arms when the tick
// arrives: SendRepeatedly's timer (scheduler.startTimer) reads its state
// without synchronisation and trips the race detector when cancelled.
type schedulerActor struct {
	store         *actor.PID
	gcInterval    time.Duration
	flushInterval time.Duration
	logger        *slog.Logger
	timers        *scheduler.TimerScheduler
	cancel        map[any]scheduler.CancelFunc
}

// tick is a scheduler timer firing; send goes to the store.
type tick struct{ send any }

func newScheduler(store *actor.PID, gc, flush time.Duration, logger *slog.Logger) actor.Producer {
	return func() actor.Actor {
		return &schedulerActor{store: store, gcInterval: gc, flushInterval: flush, logger: logger}
	}
}

var (
	gcTick    = &tick{send: &CollectGarbage{}}
	flushTick = &tick{send: &FlushOffsets{}}
)

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
		s.cancel = make(map[any]scheduler.CancelFunc, 2)
		s.arm(ctx, gcTick)
		s.arm(ctx, flushTick)
	case *tick:
		if _, armed := s.cancel[msg]; armed {
			ctx.Send(s.store, msg.send)
			s.arm(ctx, msg)
		}
	case *actor.Stopping, *actor.Restarting:
		for _, c := range s.cancel {
			c()
		}
		clear(s.cancel)
	case *actor.Stopped:
	default:
		s.logger.Warn("scheduler: unknown message", "type", typeName(msg))
	}
}

func (s *schedulerActor) arm(ctx actor.Context, t *tick) {
	d := s.gcInterval
	if t == flushTick {
		d = s.flushInterval
	}
	s.cancel[t] = s.timers.SendOnce(d, ctx.Self(), t)
}
