package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Core requests of an edge: the label values of
// killfeed_edge_core_round_trip_seconds.
const (
	CoreFetch   = "fetch"
	CoreAdvance = "advance"
	CoreInsert  = "insert"
	CoreFollow  = "follow"
	CorePing    = "ping"
	CoreHello   = "hello"
)

// Relay is what an edge's link to its core counts.
type Relay struct {
	roundTrip map[string]prometheus.Observer
	// CacheHits and CacheMisses count `since` reads answered from the
	// edge's tail of recent events, and those that had to ask the core.
	CacheHits, CacheMisses prometheus.Counter
	// Reconnects counts the times the link came back up after it was down.
	Reconnects prometheus.Counter
	// Up is 1 while the edge is in step with its core, else 0.
	Up prometheus.Gauge
	// InFlight is the number of requests forwarded to the core and not
	// answered yet.
	InFlight prometheus.Gauge
	// FollowLag is how many events the core pushed that the edge had not
	// acknowledged at the last ping.
	FollowLag prometheus.Gauge
}

// NewRelay defines an edge's link metrics on reg (nil: count, export
// nowhere).
func NewRelay(reg *prometheus.Registry) *Relay {
	rt := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "edge_core_round_trip_seconds",
		Help:    "How long an edge's requests to its core took to be answered, by request: fetch, advance, insert, follow, ping, hello.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"request"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "edge_tail_cache_reads_total",
		Help: "Since reads (websocket replays) an edge answered from its tail of recent events (hit) or by asking its core (miss).",
	}, []string{"result"})
	m := &Relay{
		roundTrip:   make(map[string]prometheus.Observer),
		CacheHits:   cache.WithLabelValues("hit"),
		CacheMisses: cache.WithLabelValues("miss"),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "edge_core_reconnects_total",
			Help: "Times an edge's link to its core came back up after it was down.",
		}),
		Up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "edge_core_up",
			Help: "1 while the edge is connected to its core and caught up, else 0.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "edge_core_requests_in_flight",
			Help: "Reads, offset moves and inserts an edge forwarded to its core that are not answered yet.",
		}),
		FollowLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "edge_follow_lag_events",
			Help: "Events the core pushed to this edge that the edge had not acknowledged at its last ping.",
		}),
	}
	for _, r := range []string{CoreFetch, CoreAdvance, CoreInsert, CoreFollow, CorePing, CoreHello} {
		m.roundTrip[r] = rt.WithLabelValues(r)
	}
	register(reg, rt, cache, m.Reconnects, m.Up, m.InFlight, m.FollowLag)
	return m
}

// RoundTrip is the round-trip histogram of one core request.
func (m *Relay) RoundTrip(request string) prometheus.Observer { return m.roundTrip[request] }
