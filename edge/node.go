package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge/edgepb"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/transport"
)

// Defaults of NodeConfig.
const (
	DefaultPingInterval = 500 * time.Millisecond
	DefaultCoreTimeout  = 2 * time.Second
	DefaultCoreGrace    = 5 * time.Second
	DefaultCacheEvents  = 10_000
	// fillPage is how many events one catch-up read asks the core for.
	fillPage = 512
)

// NodeConfig configures an edge's link to its core. Core is required; for
// the rest the zero value means the default.
type NodeConfig struct {
	// Core is the host:port of the core's Proto.Actor remote endpoint.
	Core string
	// EndpointName is the core's endpoint actor; "" means DefaultEndpointName.
	EndpointName string
	// PingInterval is how often the edge pings its core; 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// CoreTimeout is how long a ping may go unanswered before the core
	// counts as unreachable; 0 means DefaultCoreTimeout.
	CoreTimeout time.Duration
	// CoreGrace is how long the edge keeps its clients' subscriptions open
	// while the core is unreachable, to resume them without a gap when it
	// comes back; past it they are ended (websockets close with 1012) so
	// that clients move to another node. 0 means DefaultCoreGrace.
	CoreGrace time.Duration
	// CacheEvents bounds the tail of recent events kept to answer `since`
	// replays without asking the core; 0 means DefaultCacheEvents.
	CacheEvents int
	// RequestTimeout bounds a store request forwarded to the core; 0 means 5s.
	RequestTimeout time.Duration
	// Logger receives the link's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the link's metrics (core round trips, follow lag,
	// tail-cache reads, reconnects); nil exports none.
	Registry *prometheus.Registry
}

// Validate reports invalid fields by their flag names.
func (c NodeConfig) Validate() error {
	var errs []error
	if _, p, err := net.SplitHostPort(c.Core); err != nil || p == "" || p == "0" {
		errs = append(errs, fmt.Errorf("core: %q is not host:port", c.Core))
	}
	for name, d := range map[string]time.Duration{"core-ping": c.PingInterval, "core-timeout": c.CoreTimeout, "core-grace": c.CoreGrace} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", name, d))
		}
	}
	if c.CacheEvents < 0 {
		errs = append(errs, fmt.Errorf("edge-cache: must not be negative, got %d", c.CacheEvents))
	}
	return errors.Join(errs...)
}

func (c NodeConfig) withDefaults() NodeConfig {
	if c.EndpointName == "" {
		c.EndpointName = DefaultEndpointName
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.CoreTimeout <= 0 {
		c.CoreTimeout = DefaultCoreTimeout
	}
	if c.CoreGrace <= 0 {
		c.CoreGrace = DefaultCoreGrace
	}
	if c.CacheEvents <= 0 {
		c.CacheEvents = DefaultCacheEvents
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Node is an edge's link to its core: the relay actor that stands in for
// the store of the edge's actors.Service (see Upstream).
type Node struct {
	cfg     NodeConfig
	ready   atomic.Bool
	why     atomic.Pointer[string] // why the core is unreachable
	stats   atomic.Pointer[eventlog.Stats]
	metrics *metrics.Relay
}

// NewNode prepares an edge's link; start the edge's service with
// actors.StartEdge(…, node.Upstream()), then Proto.Actor remote on it, then
// call Connect.
func NewNode(cfg NodeConfig) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg.withDefaults(), metrics: metrics.NewRelay(cfg.Registry)}
	n.stats.Store(&eventlog.Stats{})
	n.setDown("not connected yet")
	return n, nil
}

// Upstream is what actors.StartEdge needs.
func (n *Node) Upstream() actors.Upstream {
	return actors.Upstream{
		Store: func(pubsub *actor.PID) actor.Producer {
			return func() actor.Actor { return &relay{node: n, cfg: n.cfg, pubsub: pubsub} }
		},
		Stats: func() eventlog.Stats { return *n.stats.Load() },
	}
}

// Connect starts talking to the core; call it once remote runs on svc's
// actor system.
func (n *Node) Connect(svc *actors.Service) {
	svc.System().Root.Send(svc.Store(), &connect{})
}

// Ready says whether the edge is in step with its core: connected and
// caught up.
func (n *Node) Ready() bool { return n.ready.Load() }

// Check is nil while the edge is in step with its core, else an error
// saying "core unreachable: <core>: <why>", for GET /readyz.
func (n *Node) Check() error {
	if n.ready.Load() {
		return nil
	}
	return fmt.Errorf("core unreachable: %s: %s", n.cfg.Core, *n.why.Load())
}

func (n *Node) setUp() {
	n.ready.Store(true)
	n.metrics.Up.Set(1)
}

func (n *Node) setDown(why string) {
	n.why.Store(&why)
	n.ready.Store(false)
	n.metrics.Up.Set(0)
}

// Messages of the relay to itself.
type (
	connect  struct{}
	linkTick struct{}
)

type linkState uint8

const (
	stateIdle    linkState = iota // before Connect
	stateDown                     // no core: saying Hello every tick
	stateSyncing                  // following again and catching up
	stateUp
)

// relay is an edge's store: it forwards store requests to the core,
// answers `since` reads it can from its tail cache, follows topics at the
// core for the edge's PubSub and publishes what the core pushes, once each,
// in event_id order.
type relay struct {
	node   *Node
	cfg    NodeConfig
	pubsub *actor.PID

	state      linkState
	gen        int // bumped whenever the link goes down: stale answers are ignored
	endpoint   *actor.PID
	forwarder  *actor.PID
	helloOut   bool
	pingOut    bool
	downSince  time.Time
	dropped    bool // this outage ended the subscribers already
	reported   bool // this outage was logged
	wasUp      bool // the link was up before: coming up again is a reconnect
	timers     *scheduler.TimerScheduler
	cancelTick scheduler.CancelFunc

	// followed maps each topic followed at the core to the event id after
	// which every one of its events came through.
	followed map[string]uint64
	last     uint64 // the last event id published here
	buffered []*edgepb.Event
	cache    tail
}

func (r *relay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.followed = make(map[string]uint64)
		r.cache.max = r.cfg.CacheEvents
		r.endpoint = actor.NewPID(r.cfg.Core, r.cfg.EndpointName)
		r.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
	case *actor.Restarting:
		// What this incarnation followed is gone: end the subscribers, who
		// resume by event_id.
		ctx.Send(r.pubsub, &actors.DropSubscribers{Err: actors.ErrRestarted})
		r.stopTimer()
	case *actor.Stopping:
		r.stopTimer()
		r.node.setDown("edge stopping")
		if r.state != stateIdle {
			ctx.Send(r.endpoint, &edgepb.Bye{RelayAddress: ctx.ActorSystem().Address(), RelayId: ctx.Self().Id})
		}
	case *actor.Stopped:
	case *connect:
		if r.state == stateIdle {
			r.state, r.downSince = stateDown, time.Now()
			r.hello(ctx)
			r.arm(ctx)
		}
	case *linkTick:
		r.tick(ctx)
		r.arm(ctx)
	case *actor.Terminated:
		if r.forwarder != nil && msg.Who.Equal(r.forwarder) {
			r.down(ctx, "forwarder terminated: "+msg.Why.String())
		}
	case *edgepb.Events:
		r.pushed(ctx, msg.GetEvents())
	case *actors.FollowTopics:
		r.follow(ctx, msg)
	case *actors.UnfollowTopics:
		for _, t := range msg.Topics {
			delete(r.followed, t)
		}
		if r.forwarder != nil {
			ctx.Send(r.forwarder, &edgepb.Unfollow{Topics: msg.Topics})
		}
	case *actors.FetchSince:
		if len(msg.Selection.Systems) == 0 && r.state != stateUp {
			// A head query (/healthz, /readyz, a websocket's start): the
			// edge is alive while its core is away, and its head is the
			// last event it published (what its tail replays up to).
			ctx.Respond(&actors.FetchResult{Batch: eventlog.Batch{Head: r.last, Oldest: min(r.node.stats.Load().Oldest, r.last+1)}})
			return
		}
		if b, ok := r.fromCache(msg); ok {
			r.node.metrics.CacheHits.Inc()
			ctx.Respond(&actors.FetchResult{Batch: b})
			return
		}
		if len(msg.Selection.Systems) > 0 {
			r.node.metrics.CacheMisses.Inc()
		}
		r.fetch(ctx, &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_SINCE, Systems: msg.Selection.Systems, Where: msg.Selection.Where.String(), After: msg.After, Limit: int64(msg.Limit)}, time.Time{})
	case *actors.FetchForClient:
		r.fetch(ctx, &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_FOR_CLIENT, ClientId: msg.ClientID, Systems: msg.Selection.Systems, Where: msg.Selection.Where.String(), Limit: int64(msg.Limit),
			Owner: msg.Owner}, msg.Deadline)
	case *actors.FetchOneEvent:
		r.fetch(ctx, &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_ONE, ClientId: msg.ClientID, Systems: msg.Selection.Systems, Where: msg.Selection.Where.String(), NewAtHead: msg.NewAtHead,
			Owner: msg.Owner}, msg.Deadline)
	case *actors.PeekForClient:
		r.fetch(ctx, &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_PEEK, ClientId: msg.ClientID, Systems: msg.Selection.Systems, Where: msg.Selection.Where.String(), Limit: int64(msg.Limit),
			Owner: msg.Owner}, time.Time{})
	case *actors.AdvanceClient:
		r.forward(ctx, metrics.CoreAdvance, &edgepb.Advance{ClientId: msg.ClientID, Systems: msg.Systems, Through: msg.Through}, r.cfg.RequestTimeout,
			func(res any, err error) any {
				ar, err := actors.ReplyAs[*edgepb.AdvanceResult](res, err)
				if err == nil {
					err = failureError(ar.GetFailure())
				}
				return &actors.AdvanceClientResult{Err: err}
			})
	case *actors.InsertKillmail:
		r.insert(ctx, msg)
	case *actors.CollectGarbage:
		// Retention is the core's.
		if ctx.Sender() != nil {
			ctx.Respond(&actors.CollectGarbageResult{})
		}
	case *actors.FlushOffsets:
		// Offsets are the core's.
		if ctx.Sender() != nil {
			ctx.Respond(&actors.FlushOffsetsResult{})
		}
	default:
		r.cfg.Logger.Warn("edge relay: unknown message", "type", fmt.Sprintf("%T", msg))
	}
}

func (r *relay) arm(ctx actor.Context) {
	r.cancelTick = r.timers.SendOnce(r.cfg.PingInterval, ctx.Self(), &linkTick{})
}

func (r *relay) stopTimer() {
	if r.cancelTick != nil {
		r.cancelTick()
		r.cancelTick = nil
	}
}

// tick pings the core when up; when down it says Hello again and, past
// the grace, ends the subscribers.
func (r *relay) tick(ctx actor.Context) {
	switch r.state {
	case stateUp, stateSyncing: // acks and liveness go on during a catch-up
		if !r.pingOut {
			r.ping(ctx)
		}
	case stateDown:
		if !r.dropped && time.Since(r.downSince) > r.cfg.CoreGrace {
			r.cfg.Logger.Warn("core unreachable past the grace; ending subscriptions", "core", r.cfg.Core, "grace", r.cfg.CoreGrace)
			r.dropAll(ctx)
		}
		if !r.helloOut {
			r.hello(ctx)
		}
	}
}

func (r *relay) ping(ctx actor.Context) {
	r.pingOut = true
	gen := r.gen
	start := time.Now()
	f := ctx.RequestFuture(r.forwarder, &edgepb.Ping{LastEventId: r.last}, r.cfg.CoreTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		r.pingOut = false
		if gen != r.gen {
			return
		}
		p, err := actors.ReplyAs[*edgepb.Pong](res, err)
		if err != nil {
			if errors.Is(err, actors.ErrUnavailable) {
				err = errNoAnswer
			}
			r.down(ctx, fmt.Sprintf("ping: %v", err))
			return
		}
		r.node.metrics.RoundTrip(metrics.CorePing).Observe(time.Since(start).Seconds())
		r.node.metrics.FollowLag.Set(float64(p.GetUnacked()))
		r.node.stats.Store(&eventlog.Stats{Events: int(p.GetEvents()), Bytes: p.GetBytes(), Clients: int(p.GetClients()),
			Oldest: p.GetOldest(), Head: p.GetHead()})
	})
}

// down marks the core unreachable: requests fail at once, /readyz says so,
// and Hello goes out every tick.
func (r *relay) down(ctx actor.Context, why string) {
	if r.state == stateDown || r.state == stateIdle {
		return
	}
	r.cfg.Logger.Warn("core link down", "core", r.cfg.Core, "why", why)
	if r.forwarder != nil {
		ctx.Unwatch(r.forwarder)
	}
	r.state, r.gen, r.forwarder, r.buffered = stateDown, r.gen+1, nil, nil
	r.downSince, r.dropped, r.reported = time.Now(), false, true
	r.node.setDown(why)
}

// dropAll ends every local subscriber: they resume by event_id, here or
// elsewhere. Topics they followed are unfollowed as they go.
func (r *relay) dropAll(ctx actor.Context) {
	r.dropped = true
	ctx.Send(r.pubsub, &actors.DropSubscribers{Err: actors.ErrRestarted})
}

func (r *relay) hello(ctx actor.Context) {
	r.helloOut = true
	gen := r.gen
	hello := &edgepb.Hello{Version: edgepb.Version, RelayAddress: ctx.ActorSystem().Address(), RelayId: ctx.Self().Id}
	start := time.Now()
	f := ctx.RequestFuture(r.endpoint, hello, r.cfg.CoreTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		r.helloOut = false
		if gen != r.gen || r.state != stateDown {
			return
		}
		h, err := actors.ReplyAs[*edgepb.HelloResult](res, err)
		if err == nil {
			if f := h.GetFailure(); f != nil {
				err = fmt.Errorf("refused this edge: %s", f.GetMessage())
			}
		}
		if err != nil {
			// One line per outage; Proto.Actor's retries log at debug.
			if errors.Is(err, actors.ErrUnavailable) {
				err = errNoAnswer
			}
			why := fmt.Sprintf("hello: %v", err)
			r.node.setDown(why)
			if !r.reported {
				r.reported = true
				r.cfg.Logger.Warn("core unreachable", "core", r.cfg.Core, "why", why)
			} else {
				r.cfg.Logger.Debug("core hello unanswered", "core", r.cfg.Core, "err", err)
			}
			return
		}
		r.node.metrics.RoundTrip(metrics.CoreHello).Observe(time.Since(start).Seconds())
		r.forwarder = actor.NewPID(r.cfg.Core, h.GetForwarderId())
		ctx.Watch(r.forwarder)
		r.state = stateSyncing
		r.sync(ctx)
	})
}

// sync follows every followed topic again, then reads what the core
// stored after the last event published here (subscribe first, then
// fill: nothing slips between), then goes up.
func (r *relay) sync(ctx actor.Context) {
	if len(r.followed) == 0 {
		r.up(ctx)
		return
	}
	topics := make([]string, 0, len(r.followed))
	for t := range r.followed {
		topics = append(topics, t)
	}
	systems, fillable := topicSystems(topics)
	gen := r.gen
	f := ctx.RequestFuture(r.forwarder, &edgepb.Follow{Topics: topics}, r.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if gen != r.gen {
			return
		}
		fr, err := actors.ReplyAs[*edgepb.FollowResult](res, err)
		if err == nil {
			err = failureError(fr.GetFailure())
		}
		if err != nil {
			r.down(ctx, fmt.Sprintf("follow again: %v", err))
			return
		}
		if fr.GetHead() < r.last || !fillable {
			// The core's log is not the one these events came from (or a
			// topic cannot be read back): start over from its head.
			r.cfg.Logger.Warn("core cannot replay this edge's gap; ending subscriptions", "core_head", fr.GetHead(), "edge_last", r.last)
			r.restartAt(ctx, fr.GetHead())
			r.up(ctx)
			return
		}
		r.fill(ctx, systems, fr.GetHead())
	})
}

// restartAt forgets what came before head: subscribers are ended, and the
// followed topics count as complete from head on.
func (r *relay) restartAt(ctx actor.Context, head uint64) {
	r.dropAll(ctx)
	r.last = head
	r.cache.reset(head)
	for t := range r.followed {
		r.followed[t] = head
	}
}

// fill reads the core's events of systems after r.last, page by page, and
// publishes them; then what was pushed meanwhile.
func (r *relay) fill(ctx actor.Context, systems []int64, head uint64) {
	gen := r.gen
	req := &edgepb.Fetch{Kind: edgepb.FetchKind_FETCH_SINCE, Systems: systems, After: r.last, Limit: fillPage}
	f := ctx.RequestFuture(r.endpoint, req, r.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if gen != r.gen {
			return
		}
		b, err := actors.ReplyAs[*edgepb.FetchResult](res, err)
		if err == nil {
			err = failureError(b.GetFailure())
		}
		if err != nil {
			r.down(ctx, fmt.Sprintf("catch up: %v", err))
			return
		}
		if b.GetMissed() {
			r.cfg.Logger.Warn("events this edge had not received were dropped by the core's retention; ending subscriptions")
			r.restartAt(ctx, head)
			r.up(ctx)
			return
		}
		r.publish(ctx, b.GetEvents())
		if len(b.GetEvents()) == fillPage {
			r.fill(ctx, systems, head)
			return
		}
		r.up(ctx)
	})
}

func (r *relay) up(ctx actor.Context) {
	r.publish(ctx, r.buffered)
	r.buffered = nil
	if r.state != stateUp {
		r.cfg.Logger.Info("core link up", "core", r.cfg.Core, "last_event_id", r.last, "topics", len(r.followed))
		if r.wasUp {
			r.node.metrics.Reconnects.Inc()
		}
	}
	r.state, r.dropped, r.reported, r.wasUp = stateUp, false, false, true
	r.node.setUp()
	if !r.pingOut {
		r.ping(ctx)
	}
}

// pushed takes events the forwarder pushed.
func (r *relay) pushed(ctx actor.Context, evs []*edgepb.Event) {
	switch r.state {
	case stateUp:
		r.publish(ctx, evs)
	case stateSyncing:
		r.buffered = append(r.buffered, evs...)
	}
	// Down: the catch-up after Hello reads them again.
}

// publish hands events newer than the last to PubSub and the cache.
func (r *relay) publish(ctx actor.Context, evs []*edgepb.Event) {
	for _, e := range evs {
		if e.GetEventId() <= r.last {
			continue
		}
		r.last = e.GetEventId()
		ev := eventFromPB(e)
		r.cache.add(ev)
		ctx.Send(r.pubsub, &actors.KillmailInserted{EventID: ev.ID, SystemID: ev.SystemID, Killmail: ev.Killmail,
			Named: ev.Named, NamedPartial: ev.NamedPartial})
	}
}

// follow has the forwarder push topics; the answer goes back to PubSub
// once the core subscribed.
func (r *relay) follow(ctx actor.Context, msg *actors.FollowTopics) {
	if r.state != stateUp {
		ctx.Respond(&actors.FollowTopicsResult{Err: actors.ErrUnavailable})
		return
	}
	sender, gen := ctx.Sender(), r.gen
	start := time.Now()
	f := ctx.RequestFuture(r.forwarder, &edgepb.Follow{Topics: msg.Topics}, r.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		fr, err := actors.ReplyAs[*edgepb.FollowResult](res, err)
		if err == nil {
			r.node.metrics.RoundTrip(metrics.CoreFollow).Observe(time.Since(start).Seconds())
			err = failureError(fr.GetFailure())
		}
		switch {
		case gen != r.gen:
			err = actors.ErrUnavailable
		case err != nil:
		default:
			for _, t := range msg.Topics {
				if _, ok := r.followed[t]; !ok {
					r.followed[t] = fr.GetHead()
				}
			}
		}
		if sender != nil {
			ctx.Send(sender, &actors.FollowTopicsResult{Err: err})
		}
	})
}

// fromCache answers a since read from the tail when every system asked for
// is followed, and the tail holds all of its events after msg.After. It
// answers while the core is briefly away too: the replay ends at the last
// event received, and what the core stored after it reaches the
// subscriber once the link is back, or the subscriber is ended past the
// grace.
func (r *relay) fromCache(msg *actors.FetchSince) (eventlog.Batch, bool) {
	systems := msg.Selection.Systems
	if r.state == stateIdle || r.dropped || len(systems) == 0 || msg.After < r.cache.floor ||
		!msg.Selection.Where.Empty() { // a filtered read's scan bound is the core's
		return eventlog.Batch{}, false
	}
	all := slices.Contains(systems, eventlog.AllSystems)
	for _, s := range systems {
		if all && s != eventlog.AllSystems {
			continue
		}
		since, ok := r.followed[systemTopic(s)]
		if !ok || since > msg.After {
			return eventlog.Batch{}, false
		}
	}
	b := eventlog.Batch{Head: r.last, Oldest: r.node.stats.Load().Oldest}
	b.Events = r.cache.since(msg.After, systems, all, msg.Limit)
	for _, ev := range b.Events {
		if ev.NamedPartial {
			return eventlog.Batch{}, false // the core may know its names by now
		}
	}
	b.Through = b.Head
	if n := len(b.Events); msg.Limit > 0 && n == msg.Limit {
		b.Through, b.More = b.Events[n-1].ID, true
	}
	return b, true
}

// eventFromPB is an event as the core sent it, with its rendering.
func eventFromPB(e *edgepb.Event) eventlog.Event {
	ev := eventlog.Event{ID: e.GetEventId(), SystemID: e.GetSystemId(), Killmail: e.GetKillmail(), NamedPartial: e.GetNamedPartial()}
	if len(e.GetNamed()) > 0 {
		ev.Named = e.GetNamed()
	}
	return ev
}

// forward sends req to the core's endpoint and answers the caller with
// reply(res, err) once the core answered (or did not within timeout);
// while the core is unreachable it answers reply(nil, ErrUnavailable) at
// once.
func (r *relay) forward(ctx actor.Context, request string, req any, timeout time.Duration, reply func(res any, err error) any) {
	if r.state != stateUp {
		ctx.Respond(reply(nil, actors.ErrUnavailable))
		return
	}
	sender := ctx.Sender()
	start := time.Now()
	r.node.metrics.InFlight.Inc()
	f := ctx.RequestFuture(r.endpoint, req, timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		r.node.metrics.InFlight.Dec()
		if err == nil {
			r.node.metrics.RoundTrip(request).Observe(time.Since(start).Seconds())
		}
		answer := reply(res, err)
		if sender != nil {
			ctx.Send(sender, answer)
		}
	})
}

// fetch forwards a read. A read with a deadline tells the core how long
// its asker still waits, and waits for the core's answer a little longer
// than that: an answer that comes past the deadline, which nobody here
// receives any more, is put back at the core (edgepb.Unread), and so is
// one the caller later could not deliver (Batch.Unread).
func (r *relay) fetch(ctx actor.Context, req *edgepb.Fetch, deadline time.Time) {
	timeout := r.cfg.RequestTimeout
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			ctx.Respond(&actors.FetchResult{Err: actors.ErrUnavailable})
			return
		}
		req.TimeoutMs = max(1, left.Milliseconds())
		timeout = left + r.cfg.CoreTimeout
	}
	root, endpoint := ctx.ActorSystem().Root, r.endpoint
	r.forward(ctx, metrics.CoreFetch, req, timeout, func(res any, err error) any {
		b, err := actors.ReplyAs[*edgepb.FetchResult](res, err)
		if err == nil {
			err = failureError(b.GetFailure())
		}
		if err != nil {
			return &actors.FetchResult{Err: err}
		}
		token := b.GetUnreadToken()
		unread := func() {
			if token != 0 {
				root.Send(endpoint, &edgepb.Unread{Token: token})
			}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			unread()
			return &actors.FetchResult{Err: actors.ErrUnavailable}
		}
		out := eventlog.Batch{Missed: b.GetMissed(), Oldest: b.GetOldest(), Head: b.GetHead(), More: b.GetMore(), Through: b.GetThrough(),
			Events: make([]eventlog.Event, len(b.GetEvents()))}
		for i, e := range b.GetEvents() {
			out.Events[i] = eventFromPB(e)
			out.Events[i].Facts = selection.Extract(e.GetKillmail())
		}
		if token != 0 {
			out.SetUnread(unread)
		}
		return &actors.FetchResult{Batch: out}
	})
}

func (r *relay) insert(ctx actor.Context, msg *actors.InsertKillmail) {
	req := &edgepb.Insert{Killmails: make([]*edgepb.Killmail, len(msg.Killmails))}
	for i, k := range msg.Killmails {
		req.Killmails[i] = &edgepb.Killmail{Id: k.ID, SystemId: k.SystemID, Json: k.JSON}
	}
	if msg.Cursor != nil {
		req.HasCursor, req.CursorName, req.CursorValue = true, msg.Cursor.Name, msg.Cursor.Value
	}
	r.forward(ctx, metrics.CoreInsert, req, r.cfg.RequestTimeout, func(res any, err error) any {
		ir, err := actors.ReplyAs[*edgepb.InsertResult](res, err)
		if err == nil {
			err = failureError(ir.GetFailure())
		}
		if err != nil {
			return &actors.InsertKillmailResult{Err: err}
		}
		out := make([]eventlog.AppendResult, len(ir.GetResults()))
		for i, a := range ir.GetResults() {
			out[i] = eventlog.AppendResult{EventID: a.GetEventId(), Duplicate: a.GetDuplicate()}
		}
		return &actors.InsertKillmailResult{Results: out}
	})
}

// errNoAnswer is why the core is unreachable when a request to it timed
// out or could not be sent.
var errNoAnswer = errors.New("no answer")

// failureError maps a wire failure back to the store's error (by
// transport's error table).
func failureError(f *edgepb.Failure) error { return transport.FailureError(f) }

// allTopic is transport.AllTopic (transport imports nothing of edge, but
// edge keeps clear of the HTTP layer).
const allTopic = "all"

func systemTopic(id int64) string {
	if id == eventlog.AllSystems {
		return allTopic
	}
	return actors.SystemTopic(id)
}

// topicSystems lists the systems whose events topics carry; fillable is
// false when a topic is not a system or "all" (its events cannot be read
// back by system).
func topicSystems(topics []string) (systems []int64, fillable bool) {
	for _, t := range topics {
		if t == allTopic {
			return []int64{eventlog.AllSystems}, true
		}
	}
	for _, t := range topics {
		id, err := strconv.ParseInt(strings.TrimPrefix(t, "system:"), 10, 64)
		if !strings.HasPrefix(t, "system:") || err != nil {
			return nil, false
		}
		systems = append(systems, id)
	}
	return systems, true
}
