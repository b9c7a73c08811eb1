package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/metrics"
)

// killmailStore is the GenServer-like front of the event log. Its state is
// the *eventlog.Log, which outlives restarts of the actor.
type killmailStore struct {
	log     *eventlog.Log
	pubsub  *actor.PID
	durable bool // appends wait for a sync: run them off the actor
	logger  *slog.Logger
	metrics *metrics.Store
}

func newKillmailStore(log *eventlog.Log, pubsub *actor.PID, durable bool, logger *slog.Logger, m *metrics.Store) actor.Producer {
	return func() actor.Actor {
		return &killmailStore{log: log, pubsub: pubsub, durable: durable, logger: logger, metrics: m}
	}
}

func (a *killmailStore) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// Answer the caller now instead of letting it wait for its
			// deadline, then let the supervisor restart the actor.
			if ctx.Sender() != nil {
				ctx.Respond(fmt.Errorf("%w: %v", ErrCrashed, r))
			}
			panic(r)
		}
	}()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		root := ctx.ActorSystem().Root
		box := &outbox{}
		wake := func() { root.Send(a.pubsub, &publishWake{box: box}) }
		a.log.SetNotify(func(evs []eventlog.Event) { box.add(evs, wake) })
	case *actor.Restarting:
		a.logger.Warn("killmail store restarting")
	case *actor.Stopping, *actor.Stopped:
	case *InsertKillmail:
		a.insert(ctx, msg)
	case *FetchForClient:
		b, err := a.log.Fetch(msg.ClientID, msg.Systems, msg.Limit)
		a.answer(ctx, b, err)
	case *FetchOneEvent:
		if msg.NewAtHead {
			if err := a.log.Join(msg.ClientID, msg.Systems); err != nil {
				ctx.Respond(&FetchResult{Err: err})
				return
			}
		}
		b, err := a.log.Fetch(msg.ClientID, msg.Systems, 1)
		a.answer(ctx, b, err)
	case *PeekForClient:
		b, err := a.log.Peek(msg.ClientID, msg.Systems, msg.Limit)
		a.answer(ctx, b, err)
	case *FetchSince:
		b, err := a.log.Since(msg.Systems, msg.After, msg.Limit)
		a.answer(ctx, b, err)
	case *AdvanceClient:
		ctx.Respond(&AdvanceClientResult{Err: a.log.Advance(msg.ClientID, msg.Systems, msg.Through)})
	case *CollectGarbage:
		start := time.Now()
		st, err := a.log.Collect()
		a.metrics.Collected(st, time.Since(start), err)
		if err != nil {
			a.logger.Error("collect garbage", "err", err)
		} else if st.Dropped > 0 || st.ExpiredClients > 0 {
			a.logger.Info("collected garbage", "dropped", st.Dropped, "dropped_by_caps", st.DroppedByCaps,
				"through", st.Through, "expired_clients", st.ExpiredClients)
		}
		if ctx.Sender() != nil {
			ctx.Respond(&CollectGarbageResult{Stats: st, Err: err})
		}
	case *FlushOffsets:
		if err := a.log.Flush(); err != nil {
			a.logger.Error("flush offsets", "err", err)
		}
	case *Crash:
		panic("injected crash")
	case *Stall:
		time.Sleep(msg.D)
	default:
		a.logger.Warn("killmail store: unknown message", "type", typeName(msg))
	}
}

// insert appends in place for the memory log. A durable append waits for a
// sync, so it runs in its own goroutine: the actor keeps serving, and
// concurrent inserts share one sync. The log publishes in event_id order
// whatever order the syncs finish in.
func (a *killmailStore) insert(ctx actor.Context, msg *InsertKillmail) {
	if !a.durable {
		res, err := a.log.Append(msg.Killmails, msg.Cursor)
		a.metrics.Inserted(msg.Source, res)
		ctx.Respond(&InsertKillmailResult{Results: res, Err: err})
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	go func() {
		res, err := a.log.Append(msg.Killmails, msg.Cursor)
		a.metrics.Inserted(msg.Source, res)
		if sender != nil {
			root.Send(sender, &InsertKillmailResult{Results: res, Err: err})
		}
	}()
}

// answer responds to a fetch. Killmails the log left on disk are read off
// the actor first, by a goroutine that then answers: a reader catching up
// from far back (every reader, after a restart) holds up no insert and no
// other reader.
func (a *killmailStore) answer(ctx actor.Context, b eventlog.Batch, err error) {
	a.metrics.Answered(b.Missed)
	if err != nil || !b.OnDisk() {
		ctx.Respond(&FetchResult{Batch: b, Err: err})
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	go func() {
		res := &FetchResult{Batch: b}
		if res.Err = res.Batch.ReadBodies(); res.Err != nil {
			res.Batch = eventlog.Batch{}
		}
		if sender != nil {
			root.Send(sender, res)
		}
	}()
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
