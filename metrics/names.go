package metrics

import "github.com/prometheus/client_golang/prometheus"

// ESI endpoints of the names client: the label values of
// killfeed_names_esi_requests_total.
const (
	ESINames        = "universe_names"
	ESICorporations = "corporations"
	ESIAlliances    = "alliances"
)

// OutcomeBackingOff is a names lookup not sent because the client waits
// out ESI's error limit, a 420/429 or backoff after faults.
const OutcomeBackingOff = "backing_off"

// Names is what the names resolver counts. A nil *Names counts nowhere.
type Names struct {
	esi          map[string]map[string]prometheus.Counter
	hits, misses prometheus.Counter
}

// NewNames defines the names metrics on reg (nil: export nowhere); size
// reports the entries the cache holds in memory.
func NewNames(reg *prometheus.Registry, size func() int) *Names {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "names_esi_requests_total",
		Help: "Requests of the names resolver to ESI by endpoint (universe_names, corporations, alliances) and outcome: ok, not_found, rate_limited (420/429), server_error (5xx), client_error (other 4xx), malformed, error (no answer), backing_off (not sent: pausing).",
	}, []string{"endpoint", "outcome"})
	m := &Names{esi: make(map[string]map[string]prometheus.Counter)}
	for _, e := range []string{ESINames, ESICorporations, ESIAlliances} {
		m.esi[e] = make(map[string]prometheus.Counter)
		for _, o := range append(Outcomes, OutcomeBackingOff) {
			m.esi[e][o] = vec.WithLabelValues(e, o)
		}
	}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "names_lookups_total",
		Help: "Character, corporation and alliance ids looked up in the names cache, by result (hit: known, fresh or stale; miss: asked of ESI). Hit ratio: hit / (hit + miss).",
	}, []string{"result"})
	m.hits, m.misses = lookups.WithLabelValues("hit"), lookups.WithLabelValues("miss")
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "names_cache_entries",
		Help: "Names (characters, corporations, alliances, and ids ESI does not know) the cache holds in memory.",
	}, func() float64 {
		if size == nil {
			return 0
		}
		return float64(size())
	})
	register(reg, vec, lookups, entries)
	return m
}

// ESI counts one request to endpoint with its outcome.
func (m *Names) ESI(endpoint, outcome string) {
	if m == nil {
		return
	}
	if c := m.esi[endpoint][outcome]; c != nil {
		c.Inc()
	}
}

// Lookups counts cache hits and misses.
func (m *Names) Lookups(hits, misses int) {
	if m == nil {
		return
	}
	m.hits.Add(float64(hits))
	m.misses.Add(float64(misses))
}
