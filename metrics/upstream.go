package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Upstreams: the label values of killfeed_upstream_requests_total.
const (
	UpstreamR2Z2   = "r2z2"
	UpstreamRedisQ = "redisq"
	UpstreamESI    = "esi"
)

// Request outcomes: the label values of killfeed_upstream_requests_total.
const (
	OutcomeOK          = "ok"
	OutcomeGap         = "not_found"    // a 404: R2Z2's next file is not there yet; ESI: no such killmail
	OutcomeRateLimited = "rate_limited" // a 429
	OutcomeServerError = "server_error" // a 5xx
	OutcomeClientError = "client_error" // another 4xx
	OutcomeMalformed   = "malformed"    // a 200 whose body is not what was asked for
	OutcomeError       = "error"        // no answer: connection refused, timeout, …
)

// Outcomes lists every outcome label value.
var Outcomes = []string{OutcomeOK, OutcomeGap, OutcomeRateLimited, OutcomeServerError, OutcomeClientError, OutcomeMalformed, OutcomeError}

// Upstream is what the upstream sources count.
type Upstream struct {
	requests map[string]map[string]prometheus.Counter

	seq, newest atomic.Uint64
}

// NewUpstream defines the upstream metrics on reg (nil: count, export
// nowhere).
func NewUpstream(reg *prometheus.Registry) *Upstream {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "upstream_requests_total",
		Help: "Requests to upstream sources (r2z2, redisq, esi), by outcome: ok, not_found (R2Z2: the next file is not there yet), rate_limited (429), server_error (5xx), client_error (other 4xx), malformed (a 200 that is not a killmail or package), error (no answer).",
	}, []string{"upstream", "outcome"})
	m := &Upstream{requests: make(map[string]map[string]prometheus.Counter)}
	for _, u := range []string{UpstreamR2Z2, UpstreamRedisQ, UpstreamESI} {
		m.requests[u] = make(map[string]prometheus.Counter)
		for _, o := range Outcomes {
			m.requests[u][o] = vec.WithLabelValues(u, o)
		}
	}
	seq := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "r2z2_sequence",
		Help: "The R2Z2 sequence the poller fetches next (0 before it knows).",
	}, func() float64 { return float64(m.seq.Load()) })
	newest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "r2z2_newest_sequence",
		Help: "The newest R2Z2 sequence known to exist: sequence.json when it was read, else the last file fetched.",
	}, func() float64 { return float64(m.newest.Load()) })
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "r2z2_lag_sequences",
		Help: "How many R2Z2 sequences the poller is behind the newest one known to exist.",
	}, func() float64 {
		s, n := m.seq.Load(), m.newest.Load()
		if s == 0 || n < s {
			return 0
		}
		return float64(n - s + 1)
	})
	register(reg, vec, seq, newest, lag)
	return m
}

// Requests returns the counters of one upstream by outcome; a nil m or an
// unknown upstream gives counters that export nowhere.
func (m *Upstream) Requests(upstream string) Outcome {
	if m == nil {
		m = NewUpstream(nil)
	}
	return Outcome(m.requests[upstream])
}

// Outcome counts the requests of one upstream by outcome.
type Outcome map[string]prometheus.Counter

// Add counts one request with outcome (Outcome…).
func (o Outcome) Add(outcome string) {
	if c, ok := o[outcome]; ok {
		c.Inc()
	}
}

// R2Z2Sequence notes the sequence the poller fetches next.
func (m *Upstream) R2Z2Sequence(next uint64) {
	if m != nil {
		m.seq.Store(next)
	}
}

// R2Z2Newest notes a sequence known to exist upstream.
func (m *Upstream) R2Z2Newest(seq uint64) {
	if m == nil {
		return
	}
	for {
		cur := m.newest.Load()
		if seq <= cur || m.newest.CompareAndSwap(cur, seq) {
			return
		}
	}
}
