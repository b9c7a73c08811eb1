package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/selection"
)

// Config tunes the actors. The zero value means the defaults.
type Config struct {
	// GCInterval is how often the scheduler sends CollectGarbage; 0 means 60s.
	GCInterval time.Duration
	// FlushInterval is how often changed offsets are persisted; 0 means 1s.
	FlushInterval time.Duration
	// RequestTimeout bounds a request whose context has no deadline; 0 means 5s.
	RequestTimeout time.Duration
	// Topics lists the topics an event is published on; nil means SystemTopics.
	Topics TopicsFunc
	// Logger receives the actors' and Proto.Actor's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the store's metrics (inserts by source, GC, the
	// log's gauges); nil exports none.
	Registry *prometheus.Registry
	// BeforeInsert, when set, is called by Insert before the killmails go
	// to the store, on the caller's goroutine: the names resolver's Warm,
	// which starts their lookups and waits for them a bounded time. nil
	// calls nothing.
	BeforeInsert func(ctx context.Context, kms []killmail.Killmail)
}

// storeThroughput is how many messages the store handles in a row before
// it yields (Proto.Actor's default).
const storeThroughput = 300

// Service runs the actor tree over an event log and is the Go API to it.
type Service struct {
	system  *actor.ActorSystem
	root    *actor.PID
	store   *actor.PID
	pubsub  *actor.PID
	timeout time.Duration
	log     *eventlog.Log
	// stats replaces log.Stats for a Service without a local log (an edge).
	stats func() eventlog.Stats
	// worker runs the local store's mailbox; nil for an edge.
	worker *worker
	// beforeInsert is Config.BeforeInsert.
	beforeInsert func(ctx context.Context, kms []killmail.Killmail)
}

// Start spawns the actor tree over log. durable says whether appends wait
// for a disk sync. The caller keeps ownership of log and closes it after
// Stop.
func Start(log *eventlog.Log, durable bool, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	storeMetrics := metrics.NewStore(cfg.Registry, log.Stats)
	w := newWorker(storeThroughput)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	props := actor.PropsFromProducer(func() actor.Actor {
		return &rootActor{cfg: rootConfig{
			pubsub: newPubSub(cfg.Topics, logger),
			store: func(pubsub *actor.PID) actor.Producer {
				return newKillmailStore(log, pubsub, durable, logger, storeMetrics)
			},
			storeDispatcher: w,
			scheduler: func(store *actor.PID) actor.Producer {
				return newScheduler(store, cfg.GCInterval, cfg.FlushInterval, logger)
			},
		}}
	}, actor.WithSupervisor(supervisorStrategy(logger)))
	root, err := system.Root.SpawnNamed(props, "killfeed")
	if err != nil {
		system.Shutdown()
		w.stop()
		return nil, fmt.Errorf("spawn root: %w", err)
	}
	s := &Service{system: system, root: root, timeout: cfg.RequestTimeout, log: log, worker: w, beforeInsert: cfg.BeforeInsert}
	ch, err := request[*children](context.Background(), s, root, &whereAreChildren{})
	if err != nil {
		system.Shutdown()
		w.stop()
		return nil, fmt.Errorf("start actors: %w", err)
	}
	s.store, s.pubsub = ch.store, ch.pubsub
	return s, nil
}

// System is the actor system, for spawning further actors beside the tree.
func (s *Service) System() *actor.ActorSystem { return s.system }

// Store is the KillmailStore actor.
func (s *Service) Store() *actor.PID { return s.store }

// PubSub is the PubSub actor.
func (s *Service) PubSub() *actor.PID { return s.pubsub }

// Stop stops the actor tree and waits for it.
func (s *Service) Stop() {
	_ = s.system.Root.PoisonFuture(s.root).Wait()
	s.system.Shutdown()
	if s.worker != nil {
		s.worker.stop()
	}
}

// deadline is when request stops waiting for a reply under ctx.
func (s *Service) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(s.timeout)
}

// FlushOffsets persists changed client offsets now and waits until they
// are durable.
func (s *Service) FlushOffsets(ctx context.Context) error {
	r, err := request[*FlushOffsetsResult](ctx, s, s.store, &FlushOffsets{})
	if err != nil {
		return err
	}
	return r.Err
}

// request sends msg to pid and waits for a reply of type T until ctx's
// deadline (or the default timeout). A timeout is ErrUnavailable; an error
// reply is returned as is.
func request[T any](ctx context.Context, s *Service, pid *actor.PID, msg any) (T, error) {
	return requestUntil[T](ctx, s, pid, msg, s.deadline(ctx))
}

// requestUntil is request with the deadline given.
func requestUntil[T any](ctx context.Context, s *Service, pid *actor.PID, msg any, deadline time.Time) (T, error) {
	var zero T
	timeout := time.Until(deadline)
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if timeout <= 0 {
		return zero, ErrUnavailable
	}
	return ReplyAs[T](s.system.Root.RequestFuture(pid, msg, timeout).Result())
}

// Insert stores killmails, deduplicated by killmail id, and the optional
// upstream cursor in the same write.
func (s *Service) Insert(ctx context.Context, kms []killmail.Killmail, cursor *eventlog.Cursor) ([]eventlog.AppendResult, error) {
	if s.beforeInsert != nil {
		s.beforeInsert(ctx, kms)
	}
	r, err := request[*InsertKillmailResult](ctx, s, s.store, &InsertKillmail{Killmails: kms, Cursor: cursor, Source: SourceOf(ctx)})
	if err != nil {
		return nil, err
	}
	return r.Results, r.Err
}

// InsertEvent stores one killmail (ESI JSON) in systemID.
func (s *Service) InsertEvent(ctx context.Context, systemID int64, km []byte) (eventlog.AppendResult, error) {
	parsed, err := killmail.Parse(km)
	if err != nil {
		return eventlog.AppendResult{}, err
	}
	parsed.SystemID = systemID
	res, err := s.Insert(ctx, []killmail.Killmail{parsed}, nil)
	if err != nil {
		return eventlog.AppendResult{}, err
	}
	return res[0], nil
}

// FetchForClient returns every event of sel the client has not seen,
// ascending, and advances its offsets.
func (s *Service) FetchForClient(ctx context.Context, clientID string, sel selection.Selection) (eventlog.Batch, error) {
	return s.Fetch(ctx, &FetchForClient{ClientID: clientID, Selection: sel})
}

// FetchOneEvent returns the oldest event of sel the client has not seen
// (ok false when there is none) and advances its offsets past it.
func (s *Service) FetchOneEvent(ctx context.Context, clientID string, sel selection.Selection) (ev eventlog.Event, b eventlog.Batch, ok bool, err error) {
	b, err = s.Fetch(ctx, &FetchOneEvent{ClientID: clientID, Selection: sel})
	if err != nil || len(b.Events) == 0 {
		return eventlog.Event{}, b, false, err
	}
	return b.Events[0], b, true, nil
}

// Fetch sends one of the fetch messages (FetchForClient, FetchOneEvent,
// PeekForClient, FetchSince) to the store. A fetch that advances offsets
// gets ctx's deadline (or the default timeout) as its Deadline, so that it
// advances nothing when its answer would come too late to be received; one
// that carries a Deadline already is waited for until then (or ctx's
// deadline, the earlier), and is sent as it is when ctx's deadline is not
// earlier.
func (s *Service) Fetch(ctx context.Context, msg any) (eventlog.Batch, error) {
	if b, ok := s.caughtUp(ctx, msg); ok {
		return b, nil
	}
	deadline := s.deadline(ctx)
	_, ctxHas := ctx.Deadline()
	// keep says whether the message's deadline d stands: it is set, and
	// ctx's is not earlier. Then the reply is awaited until d.
	keep := func(d time.Time) bool {
		if d.IsZero() || (ctxHas && deadline.Before(d)) {
			return false
		}
		deadline = d
		return true
	}
	// A local store answers in a reply slot, set on a copy of the
	// message (the caller may send it again).
	var slot *replySlot
	if s.worker != nil {
		slot = replySlots.Get().(*replySlot)
	}
	switch m := msg.(type) {
	case *FetchForClient:
		if !keep(m.Deadline) || slot != nil {
			c := *m
			c.Deadline, c.reply = deadline, slot
			msg = &c
		}
	case *FetchOneEvent:
		if !keep(m.Deadline) || slot != nil {
			c := *m
			c.Deadline, c.reply = deadline, slot
			msg = &c
		}
	default:
		if slot != nil {
			replySlots.Put(slot)
			slot = nil
		}
	}
	if slot != nil {
		return s.fetchLocal(ctx, msg, slot, deadline)
	}
	r, err := requestUntil[*FetchResult](ctx, s, s.store, msg, deadline)
	if err != nil {
		return eventlog.Batch{}, err
	}
	return r.Batch, r.Err
}

// caughtUp answers a fetch of a client with nothing new to read from the
// local log itself (eventlog.Log.CaughtUp), without the round trip through
// the store actor: the answer is empty and moves no offset past an event,
// so it needs none of the actor's guards (a deadline, putting a late
// answer back). It is the read most polls make. Every other read, and
// every read on an edge, goes to the store.
func (s *Service) caughtUp(ctx context.Context, msg any) (eventlog.Batch, bool) {
	if s.worker == nil || ctx.Err() != nil {
		return eventlog.Batch{}, false
	}
	switch m := msg.(type) {
	case *FetchForClient:
		return s.log.CaughtUp(m.ClientID, m.Owner, m.Selection)
	case *FetchOneEvent:
		return s.log.CaughtUp(m.ClientID, m.Owner, m.Selection)
	}
	return eventlog.Batch{}, false
}

// fetchLocal sends msg, which carries slot, to the local store and waits
// for its answer until deadline.
func (s *Service) fetchLocal(ctx context.Context, msg any, slot *replySlot, deadline time.Time) (eventlog.Batch, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.Batch{}, err
	}
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return eventlog.Batch{}, ErrUnavailable
	}
	s.system.Root.Send(s.store, msg)
	t := time.NewTimer(timeout)
	defer t.Stop()
	var res *FetchResult
	select {
	case res = <-slot.ch:
	case <-t.C:
		if slot.abandon() {
			return eventlog.Batch{}, ErrUnavailable // the slot is the store's to drop
		}
		res = <-slot.ch // answered as the timer fired
	}
	slot.state.Store(slotWaiting)
	replySlots.Put(slot)
	return res.Batch, res.Err
}

// Advance moves a client's offsets for systems forward to through.
func (s *Service) Advance(ctx context.Context, clientID string, systems []int64, through uint64) error {
	r, err := request[*AdvanceClientResult](ctx, s, s.store, &AdvanceClient{ClientID: clientID, Systems: systems, Through: through})
	if err != nil {
		return err
	}
	return r.Err
}

// CollectGarbage applies retention now and waits for it.
func (s *Service) CollectGarbage(ctx context.Context) (eventlog.CollectStats, error) {
	r, err := request[*CollectGarbageResult](ctx, s, s.store, &CollectGarbage{})
	if err != nil {
		return eventlog.CollectStats{}, err
	}
	return r.Stats, r.Err
}

// Subscribe follows the topics of systemIDs: every event published after it
// returns arrives on the subscription's channel, which holds up to buffer
// events (0 means DefaultSubscriptionBuffer) before the subscription is
// dropped as a slow consumer.
func (s *Service) Subscribe(ctx context.Context, systemIDs []int64) (*Subscription, error) {
	topics := make([]string, len(systemIDs))
	for i, id := range systemIDs {
		topics[i] = SystemTopic(id)
	}
	return s.SubscribeTopics(ctx, DefaultSubscriptionBuffer, topics...)
}

// SubscribeTopics is Subscribe by topic names, with a chosen buffer size.
func (s *Service) SubscribeTopics(ctx context.Context, buffer int, topics ...string) (*Subscription, error) {
	if buffer <= 0 {
		buffer = DefaultSubscriptionBuffer
	}
	ch := make(chan *KillmailInserted, buffer)
	sub := &Subscription{C: ch, ch: ch}
	sub.membership = membership{svc: s, self: sub}
	if err := sub.Add(ctx, topics...); err != nil {
		sub.Close()
		return nil, err
	}
	return sub, nil
}

// Cursor returns a stored upstream cursor (e.g. the R2Z2 sequence).
func (s *Service) Cursor(name string) (uint64, bool) {
	if s.log == nil {
		return 0, false
	}
	return s.log.Cursor(name)
}

// Stats describes what the log holds.
func (s *Service) Stats() eventlog.Stats {
	if s.log == nil {
		return s.stats()
	}
	return s.log.Stats()
}
