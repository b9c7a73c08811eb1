package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Websocket protocols: the label values of the killfeed_ws_… metrics.
const (
	ProtocolNative  = "native"
	ProtocolPhoenix = "phoenix"
	ProtocolZKill   = "zkill"
)

// Serving is what the HTTP and websocket surface counts.
type Serving struct {
	duration *prometheus.HistogramVec
	// LongPollsWaiting is the number of long-polls (poll, next and
	// listen.php with a wait) holding their request open for an event.
	LongPollsWaiting prometheus.Gauge
	ws               map[string]*WS
}

// WS is what the websockets of one protocol count, resolved once.
type WS struct {
	// Open is the number of open connections.
	Open prometheus.Gauge
	// Opened counts accepted connections.
	Opened prometheus.Counter
	// Pushed counts events written to connections (live and replayed).
	Pushed prometheus.Counter
	// SlowConsumerCloses counts connections closed because their buffer
	// overflowed (close code 1008).
	SlowConsumerCloses prometheus.Counter
	// KeepaliveDrops counts connections dropped because the peer did not
	// answer a keepalive ping in time.
	KeepaliveDrops prometheus.Counter
}

// NewServing defines the HTTP and websocket metrics on reg (nil: count,
// export nowhere).
func NewServing(reg *prometheus.Registry) *Serving {
	m := &Serving{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "How long the polling, ingest and RedisQ requests took, by route pattern, status code and whether the request long-polled (wait/ttw given).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "status", "long_poll"}),
		LongPollsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "long_polls_waiting",
			Help: "Long-polls holding their request open until an event arrives or their wait ends.",
		}),
		ws: make(map[string]*WS),
	}
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, []string{"protocol"})
	}
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "ws_connections", Help: "Open websocket connections, by protocol.",
	}, []string{"protocol"})
	opened := vec("ws_connections_opened_total", "Websocket connections accepted, by protocol.")
	pushed := vec("ws_events_pushed_total", "Events written to websocket connections (live and replayed), by protocol.")
	slow := vec("ws_slow_consumer_closes_total", "Websocket connections closed as slow consumers (1008), by protocol.")
	drops := vec("ws_keepalive_drops_total", "Websocket connections dropped for not answering a keepalive ping, by protocol.")
	for _, p := range []string{ProtocolNative, ProtocolPhoenix, ProtocolZKill} {
		m.ws[p] = &WS{
			Open: open.WithLabelValues(p), Opened: opened.WithLabelValues(p), Pushed: pushed.WithLabelValues(p),
			SlowConsumerCloses: slow.WithLabelValues(p), KeepaliveDrops: drops.WithLabelValues(p),
		}
	}
	register(reg, m.duration, m.LongPollsWaiting, open, opened, pushed, slow, drops)
	return m
}

// WS returns the counters of a websocket protocol (ProtocolNative, …).
func (m *Serving) WS(protocol string) *WS { return m.ws[protocol] }

// Route returns the request-duration observers of one route pattern.
func (m *Serving) Route(pattern string) *Route {
	return &Route{vec: m.duration, route: pattern}
}

// Route observes the requests of one route. The observer of a (status,
// long-poll) pair is resolved the first time it is seen and kept: later
// requests take it with one atomic load.
type Route struct {
	vec   *prometheus.HistogramVec
	route string
	obs   [2][500]atomic.Pointer[observer] // [long poll][status-100]
}

type observer struct{ prometheus.Observer }

// Observe records a request that answered status after seconds.
func (r *Route) Observe(status int, longPoll bool, seconds float64) {
	lp := 0
	if longPoll {
		lp = 1
	}
	if status < 100 || status >= 600 {
		r.vec.WithLabelValues(r.route, strconv.Itoa(status), strconv.FormatBool(longPoll)).Observe(seconds)
		return
	}
	p := &r.obs[lp][status-100]
	o := p.Load()
	if o == nil {
		o = &observer{r.vec.WithLabelValues(r.route, strconv.Itoa(status), strconv.FormatBool(longPoll))}
		p.Store(o)
	}
	o.Observe(seconds)
}
