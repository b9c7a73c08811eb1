package edge

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge/edgepb"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/transport"
)

// DefaultEndpointName is the name of the core's endpoint actor that edges
// say Hello to and send their store requests.
const DefaultEndpointName = "edge"

// CoreConfig configures the core's side. The zero value means the defaults.
type CoreConfig struct {
	// Name is the endpoint actor's name; "" means DefaultEndpointName.
	Name string
	// Timeout bounds one store request on the core; 0 means 5s.
	Timeout time.Duration
	// EdgeIdle stops the forwarder of an edge not heard from (no Ping)
	// this long; 0 means 30s. An edge whose connection drops is noticed at
	// once (remote watch); this catches one that hangs.
	EdgeIdle time.Duration
	// MaxUnacked bounds the events a forwarder pushed that its edge has
	// not acknowledged (by the last_event_id of its pings); past it the
	// forwarder stops, so that a slow or stuck edge costs the core bounded
	// memory, and the edge catches up by reading. 0 means 100,000.
	MaxUnacked int
	// UnreadHold is how long the core keeps what puts back an answer that
	// advanced offsets, for its edge to send edgepb.Unread when it could
	// not deliver it; 0 means 30s.
	UnreadHold time.Duration
	// MaxUnreads bounds the answers held so (the oldest go first); 0 means
	// 100,000.
	MaxUnreads int
	// Logger receives the endpoint's logs; nil discards them.
	Logger *slog.Logger
	// Render, when set, adds the names beside the ids of the events sent to
	// edges (names.Renderer.RenderPartial): an edge serves the core's
	// rendering, never an older one of its own. nil sends none.
	Render func(eventlog.Event) (named []byte, partial bool)
}

// Core is the core's side of the edge protocol: the endpoint actor, on the
// service's actor system. Proto.Actor remote must be started on that system
// for edges to reach it (app does it with the remote ingest endpoint).
type Core struct {
	system *actor.ActorSystem
	pid    *actor.PID
}

// StartCore spawns the endpoint actor on svc's actor system.
func StartCore(svc *actors.Service, cfg CoreConfig) (*Core, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultEndpointName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.EdgeIdle <= 0 {
		cfg.EdgeIdle = 30 * time.Second
	}
	if cfg.MaxUnacked <= 0 {
		cfg.MaxUnacked = 100_000
	}
	if cfg.UnreadHold <= 0 {
		cfg.UnreadHold = 30 * time.Second
	}
	if cfg.MaxUnreads <= 0 {
		cfg.MaxUnreads = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	system := svc.System()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &endpoint{svc: svc, cfg: cfg, forwarders: make(map[string]*actor.PID),
			unreads: newUnreads(cfg.UnreadHold, cfg.MaxUnreads)}
	})
	pid, err := system.Root.SpawnNamed(props, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", cfg.Name, err)
	}
	return &Core{system: system, pid: pid}, nil
}

// Stop stops the endpoint and every forwarder, and waits.
func (c *Core) Stop() { _ = c.system.Root.StopFuture(c.pid).Wait() }

// endpoint answers edges: Hello starts a forwarder per edge; store
// requests are turned into actor messages to the store, answered without
// blocking Receive.
type endpoint struct {
	svc        *actors.Service
	cfg        CoreConfig
	forwarders map[string]*actor.PID // by the edge relay's address/id
	unreads    *unreads
}

func relayKey(address, id string) string { return address + "/" + id }

func (e *endpoint) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *actor.Terminated:
		for k, pid := range e.forwarders {
			if pid.Equal(msg.Who) {
				delete(e.forwarders, k)
			}
		}
	case *edgepb.Hello:
		e.hello(ctx, msg)
	case *edgepb.Bye:
		if pid, ok := e.forwarders[relayKey(msg.GetRelayAddress(), msg.GetRelayId())]; ok {
			ctx.Stop(pid)
		}
	case *edgepb.Fetch:
		e.fetch(ctx, msg)
	case *edgepb.Unread:
		e.unreads.unread(msg.GetToken())
	case *edgepb.Advance:
		req := &actors.AdvanceClient{ClientID: msg.GetClientId(), Systems: msg.GetSystems(), Through: msg.GetThrough()}
		e.ask(ctx, req, func(res any, err error) any {
			r, err := actors.ReplyAs[*actors.AdvanceClientResult](res, err)
			if err == nil {
				err = r.Err
			}
			return &edgepb.AdvanceResult{Failure: failure(err)}
		})
	case *edgepb.Insert:
		e.insert(ctx, msg)
	default:
		e.cfg.Logger.Warn("edge endpoint: unknown message", "type", fmt.Sprintf("%T", msg))
	}
}

func (e *endpoint) hello(ctx actor.Context, msg *edgepb.Hello) {
	if msg.GetVersion() != edgepb.Version {
		ctx.Respond(&edgepb.HelloResult{Version: edgepb.Version, Failure: &edgepb.Failure{
			Code: edgepb.Code_CODE_VERSION, Message: fmt.Sprintf("edge speaks version %d, core %d", msg.GetVersion(), edgepb.Version)}})
		return
	}
	key := relayKey(msg.GetRelayAddress(), msg.GetRelayId())
	if old, ok := e.forwarders[key]; ok {
		// The edge lost its forwarder's answers and says Hello again:
		// start afresh (it follows its topics again).
		ctx.Stop(old)
		delete(e.forwarders, key)
	}
	relay := actor.NewPID(msg.GetRelayAddress(), msg.GetRelayId())
	props := actor.PropsFromProducer(func() actor.Actor {
		return &forwarder{svc: e.svc, relay: relay, cfg: e.cfg}
	})
	pid := ctx.Spawn(props)
	ctx.Watch(pid)
	e.forwarders[key] = pid
	e.cfg.Logger.Info("edge connected", "relay", key, "forwarder", pid.Id)
	ctx.Respond(&edgepb.HelloResult{Version: edgepb.Version, ForwarderId: pid.Id})
}

// ask sends req to the store and answers the edge with reply(res, err)
// once the store has answered.
func (e *endpoint) ask(ctx actor.Context, req any, reply func(res any, err error) any) {
	e.askWithin(ctx, req, e.cfg.Timeout, reply)
}

// askWithin is ask waiting up to timeout for the store.
func (e *endpoint) askWithin(ctx actor.Context, req any, timeout time.Duration, reply func(res any, err error) any) {
	sender := ctx.Sender()
	f := ctx.RequestFuture(e.svc.Store(), req, timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if sender != nil {
			ctx.Send(sender, reply(res, err))
		}
	})
}

func (e *endpoint) fetch(ctx actor.Context, msg *edgepb.Fetch) {
	var req any
	limit := int(msg.GetLimit())
	where, err := selection.Parse(msg.GetWhere())
	if err != nil {
		ctx.Respond(&edgepb.FetchResult{Failure: failure(err)})
		return
	}
	sel := selection.Selection{Systems: msg.GetSystems(), Where: where}
	var deadline time.Time
	if ms := msg.GetTimeoutMs(); ms > 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	switch msg.GetKind() {
	case edgepb.FetchKind_FETCH_FOR_CLIENT:
		req = &actors.FetchForClient{ClientID: msg.GetClientId(), Selection: sel, Limit: limit,
			Owner: msg.GetOwner(), Deadline: deadline}
	case edgepb.FetchKind_FETCH_ONE:
		req = &actors.FetchOneEvent{ClientID: msg.GetClientId(), Selection: sel, NewAtHead: msg.GetNewAtHead(),
			Owner: msg.GetOwner(), Deadline: deadline}
	case edgepb.FetchKind_FETCH_PEEK:
		req = &actors.PeekForClient{ClientID: msg.GetClientId(), Selection: sel, Limit: limit, Owner: msg.GetOwner()}
	default:
		req = &actors.FetchSince{Selection: sel, After: msg.GetAfter(), Limit: limit}
	}
	// The store answers a read with a deadline by then (past it, with
	// ErrUnavailable and its offsets put back): wait for that answer, so
	// that none is lost between the store and the edge.
	timeout := e.cfg.Timeout
	if !deadline.IsZero() {
		timeout = max(timeout, time.Until(deadline)+time.Second)
	}
	e.askWithin(ctx, req, timeout, func(res any, err error) any {
		r, err := actors.ReplyAs[*actors.FetchResult](res, err)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return &edgepb.FetchResult{Failure: failure(err)}
		}
		out := batchToPB(r.Batch, e.cfg.Render)
		if r.Batch.Unreadable() {
			out.UnreadToken = e.unreads.hold(r.Batch)
		}
		return out
	})
}

func (e *endpoint) insert(ctx actor.Context, msg *edgepb.Insert) {
	kms := make([]killmail.Killmail, len(msg.GetKillmails()))
	for i, k := range msg.GetKillmails() {
		kms[i] = killmail.Killmail{ID: k.GetId(), SystemID: k.GetSystemId(), JSON: k.GetJson()}
		if kms[i].ID <= 0 || kms[i].SystemID <= 0 || len(kms[i].JSON) == 0 {
			ctx.Respond(&edgepb.InsertResult{Failure: &edgepb.Failure{Code: edgepb.Code_CODE_BAD_KILLMAIL,
				Message: fmt.Sprintf("killmail %d: id, system_id and json are required", i)}})
			return
		}
	}
	req := &actors.InsertKillmail{Killmails: kms}
	if msg.GetHasCursor() {
		req.Cursor = &eventlog.Cursor{Name: msg.GetCursorName(), Value: msg.GetCursorValue()}
	}
	e.ask(ctx, req, func(res any, err error) any {
		r, err := actors.ReplyAs[*actors.InsertKillmailResult](res, err)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return &edgepb.InsertResult{Failure: failure(err)}
		}
		out := &edgepb.InsertResult{Results: make([]*edgepb.Appended, len(r.Results))}
		for i, a := range r.Results {
			out.Results[i] = &edgepb.Appended{EventId: a.EventID, Duplicate: a.Duplicate}
		}
		return out
	})
}

// failure encodes a store error for the wire (by transport's error
// table); nil for nil.
func failure(err error) *edgepb.Failure { return transport.WireFailure(err) }

func batchToPB(b eventlog.Batch, render func(eventlog.Event) ([]byte, bool)) *edgepb.FetchResult {
	out := &edgepb.FetchResult{Missed: b.Missed, Oldest: b.Oldest, Head: b.Head, More: b.More, Through: b.Through,
		Events: make([]*edgepb.Event, len(b.Events))}
	for i, ev := range b.Events {
		out.Events[i] = eventToPB(ev, render)
	}
	return out
}

// eventToPB is ev with the core's rendering of its names, when it renders.
func eventToPB(ev eventlog.Event, render func(eventlog.Event) ([]byte, bool)) *edgepb.Event {
	pb := &edgepb.Event{EventId: ev.ID, SystemId: ev.SystemID, Killmail: ev.Killmail}
	if render != nil {
		pb.Named, pb.NamedPartial = render(ev)
	}
	return pb
}

// forwarder pushes the events of the topics one edge follows to its relay:
// one core subscription per edge, whatever number of clients the edge
// serves.
type forwarder struct {
	svc      *actors.Service
	relay    *actor.PID
	cfg      CoreConfig
	sub      *actors.PIDSubscriber
	lastPing time.Time
	timers   *scheduler.TimerScheduler
	cancel   scheduler.CancelFunc
	// unacked are the ids of pushed events the edge has not acknowledged,
	// ascending.
	unacked []uint64
}

// idleCheck is the forwarder's timer: has its edge pinged lately?
type idleCheck struct{}

// subscriptionLost is the core's PubSub dropping a forwarder's subscription.
type subscriptionLost struct{ err error }

func (f *forwarder) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		self, root := ctx.Self(), ctx.ActorSystem().Root
		f.sub = &actors.PIDSubscriber{PID: self, Closed: func(err error) {
			if err != nil { // dropped by PubSub, not unsubscribed by us
				root.Send(self, &subscriptionLost{err: err})
			}
		}}
		f.lastPing = time.Now()
		f.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
		f.cancel = f.timers.SendOnce(f.cfg.EdgeIdle/2, ctx.Self(), &idleCheck{})
		ctx.Watch(f.relay)
	case *actor.Stopping, *actor.Restarting:
		if f.cancel != nil {
			f.cancel()
		}
		ctx.Send(f.svc.PubSub(), &actors.Unsubscribe{Subscriber: f.sub})
	case *actor.Stopped:
	case *subscriptionLost:
		// The edge would wait for pushes that never come: stopping the
		// forwarder makes it reconnect and catch up from its last event.
		f.cfg.Logger.Warn("core subscription lost; stopping the edge's forwarder", "relay", f.relay.String(), "err", msg.err)
		ctx.Stop(ctx.Self())
	case *actor.Terminated:
		f.cfg.Logger.Info("edge gone", "relay", f.relay.String(), "why", msg.Why.String())
		ctx.Stop(ctx.Self())
	case *idleCheck:
		if time.Since(f.lastPing) > f.cfg.EdgeIdle {
			f.cfg.Logger.Warn("edge silent; stopping its forwarder", "relay", f.relay.String())
			ctx.Stop(ctx.Self())
			return
		}
		f.cancel = f.timers.SendOnce(f.cfg.EdgeIdle/2, ctx.Self(), &idleCheck{})
	case *actors.KillmailInserted:
		if len(f.unacked) >= f.cfg.MaxUnacked {
			f.cfg.Logger.Warn("edge too far behind; stopping its forwarder", "relay", f.relay.String(), "unacked", len(f.unacked))
			ctx.Stop(ctx.Self())
			return
		}
		f.unacked = append(f.unacked, msg.EventID)
		ctx.Send(f.relay, &edgepb.Events{Events: []*edgepb.Event{eventToPB(msg.Event(), f.cfg.Render)}})
	case *edgepb.Ping:
		f.lastPing = time.Now()
		n := 0
		for n < len(f.unacked) && f.unacked[n] <= msg.GetLastEventId() {
			n++
		}
		f.unacked = f.unacked[n:]
		if len(f.unacked) == 0 {
			f.unacked = nil // let go of the backing array
		}
		st := f.svc.Stats()
		ctx.Respond(&edgepb.Pong{Head: st.Head, Oldest: st.Oldest, Events: int64(st.Events), Bytes: st.Bytes, Clients: int64(st.Clients),
			Unacked: int64(len(f.unacked))})
	case *edgepb.Follow:
		f.follow(ctx, msg)
	case *edgepb.Unfollow:
		if len(msg.GetTopics()) > 0 {
			ctx.Send(f.svc.PubSub(), &actors.Unsubscribe{Subscriber: f.sub, Topics: msg.GetTopics()})
		}
	default:
		f.cfg.Logger.Warn("edge forwarder: unknown message", "type", fmt.Sprintf("%T", msg))
	}
}

// follow subscribes to topics, then reads the head: every event of topics
// after that head is pushed.
func (f *forwarder) follow(ctx actor.Context, msg *edgepb.Follow) {
	sender := ctx.Sender()
	answer := func(head uint64, err error) {
		if sender != nil {
			ctx.Send(sender, &edgepb.FollowResult{Head: head, Failure: failure(err)})
		}
	}
	sub := ctx.RequestFuture(f.svc.PubSub(), &actors.Subscribe{Subscriber: f.sub, Topics: msg.GetTopics()}, f.cfg.Timeout)
	ctx.ReenterAfter(sub, func(res any, err error) {
		if _, err = actors.ReplyAs[*actors.Subscribed](res, err); err != nil {
			answer(0, err)
			return
		}
		head := ctx.RequestFuture(f.svc.Store(), &actors.FetchSince{}, f.cfg.Timeout)
		ctx.ReenterAfter(head, func(res any, err error) {
			r, err := actors.ReplyAs[*actors.FetchResult](res, err)
			if err == nil {
				err = r.Err
			}
			if err != nil {
				answer(0, err)
				return
			}
			answer(r.Batch.Head, nil)
		})
	})
}
