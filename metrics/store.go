package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/eventlog"
)

// Insert sources: the label values of killfeed_inserts_total and
// killfeed_duplicates_total.
const (
	SourceHTTP   = "http"
	SourceR2Z2   = "r2z2"
	SourceRedisQ = "redisq"
	SourceRemote = "remote"
	SourceImport = "import"
	// SourceOther counts inserts that named no known source (Go API callers).
	SourceOther = "other"
)

// Sources lists every insert source label value.
var Sources = []string{SourceHTTP, SourceR2Z2, SourceRedisQ, SourceRemote, SourceImport, SourceOther}

func sourceIndex(s string) int {
	switch s {
	case SourceHTTP:
		return 0
	case SourceR2Z2:
		return 1
	case SourceRedisQ:
		return 2
	case SourceRemote:
		return 3
	case SourceImport:
		return 4
	}
	return 5
}

// GC drop reasons: the label values of killfeed_gc_dropped_events_total.
const (
	DropReadByAll = "read_by_all"
	DropCaps      = "caps"
	DropAge       = "age"
)

// Store is what the KillmailStore actor counts, and the log's gauges read
// at scrape time.
type Store struct {
	inserts, duplicates [6]prometheus.Counter

	gcRuns                     prometheus.Counter
	gcErrors                   prometheus.Counter
	gcDuration                 prometheus.Histogram
	droppedRead, droppedCaps   prometheus.Counter
	droppedAge, clientsExpired prometheus.Counter
	missed                     prometheus.Counter
}

// NewStore defines the store's metrics on reg (nil: count, export
// nowhere). stats, when not nil, is read at scrape time for the log's
// gauges.
func NewStore(reg *prometheus.Registry, stats func() eventlog.Stats) *Store {
	inserts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "inserts_total",
		Help: "Killmails stored (new events), by the source that sent them.",
	}, []string{"source"})
	dups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "duplicates_total",
		Help: "Killmails not stored because their killmail_id was already stored, by source.",
	}, []string{"source"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "gc_dropped_events_total",
		Help: "Events deleted by retention, by reason: read_by_all (every live client read them), caps (max-events, max-bytes), age (max-age).",
	}, []string{"reason"})
	m := &Store{
		gcRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gc_runs_total", Help: "Retention (GC) runs.",
		}),
		gcErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gc_errors_total", Help: "Retention (GC) runs that failed.",
		}),
		gcDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "gc_duration_seconds", Help: "How long one retention (GC) run took.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
		droppedRead: dropped.WithLabelValues(DropReadByAll),
		droppedCaps: dropped.WithLabelValues(DropCaps),
		droppedAge:  dropped.WithLabelValues(DropAge),
		clientsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "clients_expired_total", Help: "Clients forgotten after being idle longer than the client TTL.",
		}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "missed_answers_total",
			Help: "Reads answered with missed=true: events the reader had not read were dropped by retention.",
		}),
	}
	for i, s := range Sources {
		m.inserts[i] = inserts.WithLabelValues(s)
		m.duplicates[i] = dups.WithLabelValues(s)
	}
	register(reg, inserts, dups, dropped, m.gcRuns, m.gcErrors, m.gcDuration, m.clientsExpired, m.missed)
	if stats != nil {
		register(reg, logCollector{stats})
	}
	return m
}

// Inserted counts the outcome of one insert from source.
func (m *Store) Inserted(source string, res []eventlog.AppendResult) {
	if m == nil || len(res) == 0 {
		return
	}
	dup := 0
	for i := range res {
		if res[i].Duplicate {
			dup++
		}
	}
	i := sourceIndex(source)
	if n := len(res) - dup; n > 0 {
		m.inserts[i].Add(float64(n))
	}
	if dup > 0 {
		m.duplicates[i].Add(float64(dup))
	}
}

// Collected counts one retention run that took d.
func (m *Store) Collected(st eventlog.CollectStats, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.gcRuns.Inc()
	m.gcDuration.Observe(d.Seconds())
	if err != nil {
		m.gcErrors.Inc()
	}
	age := st.DroppedByAge
	caps := st.DroppedByCaps - age
	read := st.Dropped - st.DroppedByCaps
	if read > 0 {
		m.droppedRead.Add(float64(read))
	}
	if caps > 0 {
		m.droppedCaps.Add(float64(caps))
	}
	if age > 0 {
		m.droppedAge.Add(float64(age))
	}
	if st.ExpiredClients > 0 {
		m.clientsExpired.Add(float64(st.ExpiredClients))
	}
}

// Answered counts a read's answer: missed says it was answered with
// missed=true.
func (m *Store) Answered(missed bool) {
	if m != nil && missed {
		m.missed.Inc()
	}
}

// logCollector reads the log's Stats once per scrape.
type logCollector struct{ stats func() eventlog.Stats }

var (
	descEvents = prometheus.NewDesc(Namespace+"_log_events", "Events retained in the log.", nil, nil)
	descBytes  = prometheus.NewDesc(Namespace+"_log_bytes", "Killmail bytes retained in the log.", nil, nil)
	descHead   = prometheus.NewDesc(Namespace+"_log_head_event_id", "The newest event_id.", nil, nil)
	descOldest = prometheus.NewDesc(Namespace+"_log_oldest_event_id", "The oldest retained event_id (head+1 when none is retained).", nil, nil)
	descLive   = prometheus.NewDesc(Namespace+"_clients", "Clients (poll client_ids, RedisQ queues, websocket client_ids) the log keeps offsets for.", nil, nil)
)

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEvents
	ch <- descBytes
	ch <- descHead
	ch <- descOldest
	ch <- descLive
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.GaugeValue, float64(st.Events))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(st.Head))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, float64(st.Oldest))
	ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(st.Clients))
}

// SourceHeader is the request header with which `killfeed import --to`
// tells the server that its POSTs are an import (SourceImport), so that
// killfeed_inserts_total counts them apart from other POSTs; any other
// value counts as SourceHTTP.
const SourceHeader = "X-Killfeed-Source"
