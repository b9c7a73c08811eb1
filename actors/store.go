package actors

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
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
	// flushing is set while a FlushOffsets runs; a tick that finds it set
	// is skipped, and the running flush takes its changes too.
	flushing *atomic.Bool
	// diskReads bounds the reads of bodies left on disk running at once
	// (see diskReaders).
	diskReads chan struct{}
	// inserts makes those reads wait for durable inserts in flight.
	inserts *insertGate
}

// diskReaders is how many reads of bodies left on disk run at once: half
// the CPUs, at least one. Readers catching up from far back (every client,
// after a restart) then leave the other half to inserts, which would
// otherwise wait for a CPU behind them; they queue for a turn instead.
func diskReaders() int { return max(1, runtime.GOMAXPROCS(0)/2) }

func newKillmailStore(log *eventlog.Log, pubsub *actor.PID, durable bool, logger *slog.Logger, m *metrics.Store) actor.Producer {
	flushing := new(atomic.Bool) // shared by restarts of the actor
	diskReads := make(chan struct{}, diskReaders())
	inserts := newInsertGate(insertPause)
	return func() actor.Actor {
		return &killmailStore{log: log, pubsub: pubsub, durable: durable, logger: logger, metrics: m, flushing: flushing, diskReads: diskReads, inserts: inserts}
	}
}

func (a *killmailStore) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// Answer the caller now instead of letting it wait for its
			// deadline, then let the supervisor restart the actor.
			if slot := replyOf(ctx.Message()); slot != nil {
				slot.answer(&FetchResult{Err: fmt.Errorf("%w: %v", ErrCrashed, r)})
			} else if ctx.Sender() != nil {
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
		if a.refused(ctx, msg.ClientID, msg.Owner, msg.Deadline) {
			return
		}
		b, err := a.log.Fetch(msg.ClientID, msg.Selection, msg.Limit)
		a.answerFetch(ctx, b, err, msg.Deadline)
	case *FetchOneEvent:
		if a.refused(ctx, msg.ClientID, msg.Owner, msg.Deadline) {
			return
		}
		if msg.NewAtHead {
			if err := a.log.Join(msg.ClientID, msg.Selection.Systems); err != nil {
				respond(ctx, &FetchResult{Err: err})
				return
			}
		}
		b, err := a.log.Fetch(msg.ClientID, msg.Selection, 1)
		a.answerFetch(ctx, b, err, msg.Deadline)
	case *PeekForClient:
		if a.refused(ctx, msg.ClientID, msg.Owner, time.Time{}) {
			return
		}
		b, err := a.log.Peek(msg.ClientID, msg.Selection, msg.Limit)
		a.answer(ctx, b, err)
	case *FetchSince:
		b, err := a.log.Since(msg.Selection, msg.After, msg.Limit)
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
			a.logger.Info("collected garbage", "dropped", st.Dropped, "dropped_by_reads", st.Dropped-st.DroppedByCaps,
				"dropped_by_caps", st.DroppedByCaps-st.DroppedByAge, "dropped_by_age", st.DroppedByAge,
				"through", st.Through, "expired_clients", st.ExpiredClients)
		}
		if ctx.Sender() != nil {
			ctx.Respond(&CollectGarbageResult{Stats: st, Err: err})
		}
	case *FlushOffsets:
		a.flush(ctx)
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
// whatever order the syncs finish in. Until it is answered, reads of
// bodies on disk stand still (insertGate).
func (a *killmailStore) insert(ctx actor.Context, msg *InsertKillmail) {
	if !a.durable {
		res, err := a.log.Append(msg.Killmails, msg.Cursor)
		a.metrics.Inserted(msg.Source, res)
		ctx.Respond(&InsertKillmailResult{Results: res, Err: err})
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	a.inserts.enter()
	go func() {
		res, err := a.log.Append(msg.Killmails, msg.Cursor)
		// Readers go on before the answer is sent: its receiver, readied
		// last, then runs first (it is Go's next goroutine to run here).
		a.inserts.leave()
		a.metrics.Inserted(msg.Source, res)
		if sender != nil {
			root.Send(sender, &InsertKillmailResult{Results: res, Err: err})
		}
	}()
}

// flush persists changed client offsets. A durable flush waits for a
// sync, so it runs in its own goroutine, one at a time; a sender waiting
// for a reply (tests, shutdown) gets FlushOffsetsResult when it is done.
func (a *killmailStore) flush(ctx actor.Context) {
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	reply := func(err error) {
		if err != nil {
			a.logger.Error("flush offsets", "err", err)
		}
		if sender != nil {
			root.Send(sender, &FlushOffsetsResult{Err: err})
		}
	}
	if !a.durable {
		reply(a.log.Flush())
		return
	}
	if sender == nil && !a.flushing.CompareAndSwap(false, true) {
		return // a flush is running; the next tick takes what it misses
	}
	go func() {
		if sender == nil {
			defer a.flushing.Store(false)
		}
		reply(a.log.Flush())
	}()
}

// answer responds to a read. Killmails the log left on disk are read off
// the actor first, by a goroutine that then answers: a reader catching up
// from far back (every reader, after a restart) holds up no insert and no
// other reader. It makes way for inserts in flight before each body
// (insertGate).
func (a *killmailStore) answer(ctx actor.Context, b eventlog.Batch, err error) {
	a.answerFetch(ctx, b, err, time.Time{})
}

// answerFetch is answer for a read that advanced offsets: when the answer
// is ready past deadline its asker has given up, so the offsets go back
// and the asker (if still there) gets ErrUnavailable.
func (a *killmailStore) answerFetch(ctx actor.Context, b eventlog.Batch, err error, deadline time.Time) {
	a.metrics.Answered(b.Missed)
	if err != nil {
		respond(ctx, &FetchResult{Err: err})
		return
	}
	if !b.OnDisk() {
		respond(ctx, fetchResult(b, deadline))
		return
	}
	slot, sender, root := replyOf(ctx.Message()), ctx.Sender(), ctx.ActorSystem().Root
	go func() {
		a.diskReads <- struct{}{}
		err := b.ReadBodiesPaced(a.inserts.pacer())
		<-a.diskReads
		res := &FetchResult{Err: err}
		if err == nil {
			res = fetchResult(b, deadline)
		}
		switch {
		case slot != nil:
			slot.answer(res)
		case sender != nil:
			root.Send(sender, res)
		}
	}()
}

// respond answers the fetch being handled: in its reply slot, or to its
// sender.
func respond(ctx actor.Context, res *FetchResult) {
	if slot := replyOf(ctx.Message()); slot != nil {
		slot.answer(res)
		return
	}
	ctx.Respond(res)
}

// fetchResult is the answer of a read ready now: b, or, past the asker's
// deadline, ErrUnavailable with b's offsets put back.
func fetchResult(b eventlog.Batch, deadline time.Time) *FetchResult {
	if expired(deadline) {
		b.Unread()
		return &FetchResult{Err: ErrUnavailable}
	}
	return &FetchResult{Batch: b}
}

// expired says whether a request's deadline (zero: none) has passed.
func expired(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
