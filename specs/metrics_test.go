package specs_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// scrape is one parsed GET /metrics.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics GETs /metrics in the text format and parses it.
func scrapeMetrics(ctx context.Context, base string) scrape {
	GinkgoHelper()
	r := get(ctx, base+"/metrics")
	Expect(r.Status).To(Equal(http.StatusOK))
	Expect(r.Header.Get("Content-Type")).To(HavePrefix("text/plain"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.Body)))
	Expect(err).NotTo(HaveOccurred())
	return fams
}

// sample finds the sample of family name whose labels include labels
// (name=value pairs); ok is false when there is none.
func (s scrape) sample(name string, labels ...string) (*dto.Metric, bool) {
	f := s[name]
	if f == nil {
		return nil, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value is the value of a counter, gauge or untyped sample, or a
// histogram's count; it fails the spec when there is no such sample.
func (s scrape) value(name string, labels ...string) float64 {
	GinkgoHelper()
	m, ok := s.sample(name, labels...)
	Expect(ok).To(BeTrue(), "no sample %s%v among %d families", name, labels, len(s))
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	Fail("sample " + name + " has no value")
	return 0
}

// metricFamilies are the families the service must always list.
var metricFamilies = []string{
	"killfeed_log_events", "killfeed_log_bytes", "killfeed_log_head_event_id", "killfeed_log_oldest_event_id",
	"killfeed_clients", "killfeed_inserts_total", "killfeed_duplicates_total",
	"killfeed_gc_runs_total", "killfeed_gc_errors_total", "killfeed_gc_duration_seconds",
	"killfeed_gc_dropped_events_total", "killfeed_clients_expired_total", "killfeed_missed_answers_total",
	"killfeed_http_request_duration_seconds", "killfeed_long_polls_waiting",
	"killfeed_ws_connections", "killfeed_ws_connections_opened_total", "killfeed_ws_events_pushed_total",
	"killfeed_ws_slow_consumer_closes_total", "killfeed_ws_keepalive_drops_total",
	"killfeed_upstream_requests_total", "killfeed_r2z2_sequence", "killfeed_r2z2_newest_sequence",
	"killfeed_r2z2_lag_sequences",
	"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
}

// storageFamilies are the families of the disk backend.
var storageFamilies = []string{
	"killfeed_storage_disk_usage_bytes", "killfeed_storage_wal_bytes", "killfeed_storage_wal_written_bytes_total",
	"killfeed_storage_wal_fsync_duration_seconds", "killfeed_storage_compaction_debt_bytes",
	"killfeed_storage_compactions_total", "killfeed_storage_compactions_in_progress", "killfeed_storage_flushes_total",
	"killfeed_storage_read_amplification", "killfeed_storage_block_cache_hits_total",
	"killfeed_storage_block_cache_misses_total", "killfeed_storage_block_cache_bytes", "killfeed_storage_writes_refused",
}

var _ = Describe("GET /metrics", func() {
	It("counts what the service did: inserts by source, the log, polls, long-polls, websockets, GC and storage", func(ctx SpecContext) {
		a := startKillfeed(app.Config{Storage: app.StorageDisk, DataDir: GinkgoT().TempDir()})
		base := a.URL()

		s := scrapeMetrics(ctx, base)
		Expect(s.value("killfeed_inserts_total", "source", "http")).To(BeZero())
		Expect(s.value("killfeed_log_events")).To(BeZero())

		body := wsKillmails(jita, 3)
		Expect(post(ctx, base+"/api/killmails", body).Status).To(Equal(http.StatusCreated))
		Expect(post(ctx, base+"/api/killmails", body).Status).To(Equal(http.StatusCreated)) // the same three again
		Expect(get(ctx, pollURL(base, "/api/killfeed", "m", []int64{jita})).Status).To(Equal(http.StatusOK))
		Expect(get(ctx, pollURL(base, "/api/killfeed", "m2", []int64{jita}, "wait", "5")).Status).To(Equal(http.StatusOK))
		Expect(get(ctx, pollURL(base, "/api/killfeed/next", "m3", []int64{jita})).Status).To(Equal(http.StatusOK))
		Expect(get(ctx, base+"/api/killfeed?client_id=m").Status).To(Equal(http.StatusBadRequest))

		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":0}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		Expect(ws.killmails(ctx, 3)).To(Equal([]uint64{1, 2, 3}))

		s = scrapeMetrics(ctx, base)
		Expect(slices.Collect(maps.Keys(s))).To(ContainElements(append(metricFamilies, storageFamilies...)))
		Expect(s.value("killfeed_inserts_total", "source", "http")).To(Equal(3.0))
		Expect(s.value("killfeed_duplicates_total", "source", "http")).To(Equal(3.0))
		Expect(s.value("killfeed_inserts_total", "source", "r2z2")).To(BeZero())
		Expect(s.value("killfeed_log_events")).To(Equal(3.0))
		Expect(s.value("killfeed_log_bytes")).To(Equal(float64(a.Actors().Stats().Bytes)))
		Expect(s.value("killfeed_log_head_event_id")).To(Equal(3.0))
		Expect(s.value("killfeed_log_oldest_event_id")).To(Equal(1.0))
		Expect(s.value("killfeed_clients")).To(Equal(3.0)) // m, m2, m3
		route := "killfeed_http_request_duration_seconds"
		Expect(s.value(route, "route", "/api/killmails", "status", "201", "long_poll", "false")).To(Equal(2.0))
		Expect(s.value(route, "route", "/api/killfeed", "status", "200", "long_poll", "false")).To(Equal(1.0))
		Expect(s.value(route, "route", "/api/killfeed", "status", "200", "long_poll", "true")).To(Equal(1.0))
		Expect(s.value(route, "route", "/api/killfeed/next", "status", "200", "long_poll", "false")).To(Equal(1.0))
		Expect(s.value(route, "route", "/api/killfeed", "status", "400", "long_poll", "false")).To(Equal(1.0))
		for name := range s {
			for _, m := range s[name].GetMetric() {
				for _, l := range m.GetLabel() {
					Expect(l.GetValue()).NotTo(ContainSubstring("client_id"), "%s has a raw URL label", name)
				}
			}
		}
		Expect(s.value("killfeed_ws_connections", "protocol", "native")).To(Equal(1.0))
		Expect(s.value("killfeed_ws_connections_opened_total", "protocol", "native")).To(Equal(1.0))
		Expect(s.value("killfeed_ws_events_pushed_total", "protocol", "native")).To(Equal(3.0))
		Expect(s.value("killfeed_ws_connections", "protocol", "phoenix")).To(BeZero())
		Expect(s.value("killfeed_storage_disk_usage_bytes")).To(BeNumerically(">", 0))
		Expect(s.value("killfeed_storage_wal_fsync_duration_seconds")).To(BeNumerically(">", 0))
		Expect(s.value("killfeed_storage_writes_refused")).To(BeZero())

		By("a live event is pushed and counted")
		wsInsert(ctx, base, jita, 1)
		Expect(ws.killmails(ctx, 1)).To(Equal([]uint64{4}))
		Expect(scrapeMetrics(ctx, base).value("killfeed_ws_events_pushed_total", "protocol", "native")).To(Equal(4.0))

		By("a long-poll waiting is counted while it waits")
		answered := make(chan int, 1)
		go func() {
			defer GinkgoRecover()
			answered <- get(ctx, pollURL(base, "/api/killfeed", "m", []int64{amarr}, "wait", "30")).Status
		}()
		Eventually(func() float64 { return scrapeMetrics(ctx, base).value("killfeed_long_polls_waiting") }).
			WithContext(ctx).Should(Equal(1.0))
		wsInsert(ctx, base, amarr, 1)
		Eventually(answered).WithContext(ctx).Should(Receive(Equal(http.StatusOK)))
		Eventually(func() float64 { return scrapeMetrics(ctx, base).value("killfeed_long_polls_waiting") }).
			WithContext(ctx).Should(BeZero())

		By("closing the websocket")
		Expect(ws.c.CloseNow()).To(Succeed())
		Eventually(func() float64 { return scrapeMetrics(ctx, base).value("killfeed_ws_connections", "protocol", "native") }).
			WithContext(ctx).Should(BeZero())

		By("GC drops what every client read, and a reader from before them is told it missed events")
		for _, c := range []string{"m", "m2", "m3"} {
			get(ctx, pollURL(base, "/api/killfeed", c, []int64{jita, amarr}))
		}
		st, err := a.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(Equal(5))
		ws = wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":1}`)
		Expect(ws.next(ctx)).To(HaveField("Missed", true))
		s = scrapeMetrics(ctx, base)
		Expect(s.value("killfeed_gc_runs_total")).To(BeNumerically(">=", 1))
		Expect(s.value("killfeed_gc_duration_seconds")).To(Equal(s.value("killfeed_gc_runs_total")))
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "read_by_all")).To(Equal(5.0))
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "caps")).To(BeZero())
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "age")).To(BeZero())
		Expect(s.value("killfeed_missed_answers_total")).To(BeNumerically(">=", 1))
		Expect(s.value("killfeed_log_events")).To(BeZero())
		Expect(s.value("killfeed_log_oldest_event_id")).To(Equal(6.0))
		Expect(s.value("killfeed_ws_connections_opened_total", "protocol", "native")).To(Equal(2.0))
	}, SpecTimeout(60*time.Second))

	It("counts GC drops by caps apart from drops by age", func(ctx SpecContext) {
		a := startKillfeed(app.Config{MaxEvents: 2})
		wsInsert(ctx, a.URL(), jita, 3) // the cap holds at the insert
		get(ctx, pollURL(a.URL(), "/api/killfeed", "slow", []int64{amarr}))
		wsInsert(ctx, a.URL(), jita, 2)
		_, err := a.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		s := scrapeMetrics(ctx, a.URL())
		Expect(s.value("killfeed_log_events")).To(BeNumerically("<=", 2))
		Expect(s.value("killfeed_inserts_total", "source", "http")).To(Equal(5.0))
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "age")).To(BeZero())
	}, SpecTimeout(30*time.Second))

	It("counts R2Z2 requests by outcome and tracks its sequence", func(ctx SpecContext) {
		var calls101 atomic.Int32
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/100.json":
				_, _ = w.Write(fixture.Lines()[0])
			case "/101.json":
				switch calls101.Add(1) {
				case 1:
					http.Error(w, "slow down", http.StatusTooManyRequests)
				case 2:
					http.Error(w, "oops", http.StatusBadGateway)
				default:
					_, _ = w.Write([]byte(`{"not":"a killmail"}`))
				}
			default:
				http.NotFound(w, r)
			}
		}))
		DeferCleanup(upstream.Close)
		a := startKillfeed(app.Config{Ingest: app.IngestConfig{R2Z2Enabled: true, R2Z2: ingest.R2Z2Config{
			URL: upstream.URL, Start: 100, Rate: 100, Idle: 20 * time.Millisecond,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		}}})
		Eventually(func(g Gomega) {
			s := scrapeMetrics(ctx, a.URL())
			req := "killfeed_upstream_requests_total"
			g.Expect(s.value(req, "upstream", "r2z2", "outcome", "not_found")).To(BeNumerically(">=", 1))
			g.Expect(s.value(req, "upstream", "r2z2", "outcome", "ok")).To(Equal(1.0))
			g.Expect(s.value(req, "upstream", "r2z2", "outcome", "rate_limited")).To(Equal(1.0))
			g.Expect(s.value(req, "upstream", "r2z2", "outcome", "server_error")).To(Equal(1.0))
			g.Expect(s.value(req, "upstream", "r2z2", "outcome", "malformed")).To(Equal(1.0))
			g.Expect(s.value("killfeed_inserts_total", "source", "r2z2")).To(Equal(1.0))
			g.Expect(s.value("killfeed_r2z2_sequence")).To(Equal(102.0))
			g.Expect(s.value("killfeed_r2z2_newest_sequence")).To(Equal(101.0))
			g.Expect(s.value("killfeed_r2z2_lag_sequences")).To(BeZero())
		}).WithContext(ctx).Should(Succeed())
	}, SpecTimeout(30*time.Second))

	It("counts RedisQ and ESI requests by outcome", func(ctx SpecContext) {
		lines := fixture.Lines()
		var idOnly struct {
			ID int64 `json:"killmail_id"`
		}
		Expect(json.Unmarshal(lines[1], &idOnly)).To(Succeed())
		hash := "0123456789abcdef0123456789abcdef01234567"
		esi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/killmails/"+itoa(idOnly.ID)+"/"+hash+"/" {
				_, _ = w.Write(lines[1])
				return
			}
			http.NotFound(w, r)
		}))
		DeferCleanup(esi.Close)
		var calls atomic.Int32
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch calls.Add(1) {
			case 1:
				_, _ = w.Write([]byte(`{"package":{"killID":1,"killmail":` + string(lines[0]) + `,"zkb":{"totalValue":1}}}`))
			case 2:
				http.Error(w, "down", http.StatusServiceUnavailable)
			case 3:
				_, _ = w.Write([]byte(`{"package":{"killID":` + itoa(idOnly.ID) + `,"zkb":{"hash":"` + hash + `"}}}`))
			case 4:
				_, _ = w.Write([]byte(`not json`))
			default:
				_, _ = w.Write([]byte(`{"package":null}`))
			}
		}))
		DeferCleanup(upstream.Close)
		a := startKillfeed(app.Config{Ingest: app.IngestConfig{RedisQ: ingest.RedisQConfig{
			URL: upstream.URL, Queue: "metrics", Idle: 20 * time.Millisecond,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
			ESI: ingest.ESIConfig{URL: esi.URL},
		}}})
		Eventually(func(g Gomega) {
			s := scrapeMetrics(ctx, a.URL())
			req := "killfeed_upstream_requests_total"
			g.Expect(s.value(req, "upstream", "redisq", "outcome", "ok")).To(BeNumerically(">=", 3))
			g.Expect(s.value(req, "upstream", "redisq", "outcome", "server_error")).To(Equal(1.0))
			g.Expect(s.value(req, "upstream", "redisq", "outcome", "malformed")).To(Equal(1.0))
			g.Expect(s.value(req, "upstream", "esi", "outcome", "ok")).To(Equal(1.0))
			g.Expect(s.value("killfeed_inserts_total", "source", "redisq")).To(Equal(2.0))
		}).WithContext(ctx).Should(Succeed())
	}, SpecTimeout(30*time.Second))

	It("counts slow-consumer closes and keepalive drops by protocol", func(ctx SpecContext) {
		By("a reader that stops reading while events pour in is closed as a slow consumer")
		a := startKillfeed(app.Config{Websocket: transport.WebsocketConfig{
			Buffer: 256, WriteTimeout: 30 * time.Second, PingInterval: -1,
		}})
		slow := wsDial(ctx, a.URL(), 4096)
		slow.send(ctx, `{"type":"subscribe","systems":[30000142],"since":0}`)
		Expect(slow.next(ctx).Type).To(Equal("subscribed"))
		for range 60 {
			wsInsert(ctx, a.URL(), jita, 50)
		}
		var err error
		for err == nil { // a prefix of the stream, then 1008
			_, _, err = slow.c.Read(ctx)
		}
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusPolicyViolation), "err: %v", err)
		Eventually(func(g Gomega) {
			s := scrapeMetrics(ctx, a.URL())
			g.Expect(s.value("killfeed_ws_slow_consumer_closes_total", "protocol", "native")).To(Equal(1.0))
			g.Expect(s.value("killfeed_ws_keepalive_drops_total", "protocol", "native")).To(BeZero())
		}).WithContext(ctx).Should(Succeed())

		By("a peer that does not answer pings is dropped by the keepalive")
		b := startKillfeed(app.Config{Websocket: transport.WebsocketConfig{
			PingInterval: 100 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		}})
		wsDial(ctx, b.URL(), 0) // never reads, so never answers a ping
		Eventually(func(g Gomega) {
			s := scrapeMetrics(ctx, b.URL())
			g.Expect(s.value("killfeed_ws_keepalive_drops_total", "protocol", "native")).To(Equal(1.0))
			g.Expect(s.value("killfeed_ws_connections", "protocol", "native")).To(BeZero())
			g.Expect(s.value("killfeed_ws_slow_consumer_closes_total", "protocol", "native")).To(BeZero())
		}).WithContext(ctx).Should(Succeed())
	}, SpecTimeout(60*time.Second))

	It("answers in OpenMetrics when the scraper asks for it", func(ctx SpecContext) {
		a := startKillfeed(app.Config{})
		wsInsert(ctx, a.URL(), jita, 2)
		r := do(ctx, http.MethodGet, a.URL()+"/metrics", nil,
			http.Header{"Accept": {"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}})
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(r.Header.Get("Content-Type")).To(HavePrefix("application/openmetrics-text"))
		Expect(string(r.Body)).To(HaveSuffix("# EOF\n"))
		Expect(string(r.Body)).To(ContainSubstring("# TYPE killfeed_inserts counter\n"))
		Expect(string(r.Body)).To(ContainSubstring(`killfeed_inserts_total{source="http"} 2`))
	}, SpecTimeout(30*time.Second))

	It("is per service: two services in one process count apart", func(ctx SpecContext) {
		a, b := startKillfeed(app.Config{}), startKillfeed(app.Config{})
		wsInsert(ctx, a.URL(), jita, 2)
		wsInsert(ctx, b.URL(), jita, 1)
		Expect(scrapeMetrics(ctx, a.URL()).value("killfeed_inserts_total", "source", "http")).To(Equal(2.0))
		Expect(scrapeMetrics(ctx, b.URL()).value("killfeed_inserts_total", "source", "http")).To(Equal(1.0))
	}, SpecTimeout(30*time.Second))

	It("is absent with NoMetrics", func(ctx SpecContext) {
		a := startKillfeed(app.Config{NoMetrics: true})
		Expect(get(ctx, a.URL()+"/metrics").Status).To(Equal(http.StatusNotFound))
		Expect(a.Registry()).To(BeNil())
	}, SpecTimeout(30*time.Second))
})

var _ = Describe("GET /readyz", func() {
	It("is 200 while the service takes traffic, and /healthz stays liveness", func(ctx SpecContext) {
		a := startKillfeed(app.Config{Storage: app.StorageDisk, DataDir: GinkgoT().TempDir()})
		r := get(ctx, a.URL()+"/readyz")
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(string(r.Body)).To(MatchJSON(`{"status":"ready"}`))
		Expect(get(ctx, a.URL()+"/healthz").Status).To(Equal(http.StatusOK))
	}, SpecTimeout(30*time.Second))

	It("is 503 once the service drains for a shutdown", func(ctx SpecContext) {
		a := startKillfeed(app.Config{})
		Expect(get(ctx, a.URL()+"/readyz").Status).To(Equal(http.StatusOK))
		a.API().Drain()
		r := get(ctx, a.URL()+"/readyz")
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Expect(r.Error()).To(ContainSubstring("draining"))
		Expect(get(ctx, a.URL()+"/healthz").Status).To(Equal(http.StatusOK)) // alive all the same
	}, SpecTimeout(30*time.Second))

	It("is 503 while the store actor does not answer, and 200 again once it does", func(ctx SpecContext) {
		a := startKillfeed(app.Config{})
		svc := a.Actors()
		svc.System().Root.Send(svc.Store(), &actors.Stall{D: 3 * time.Second})
		r := get(ctx, a.URL()+"/readyz")
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Expect(r.Error()).To(HavePrefix("store: "))
		Eventually(func() int { return get(ctx, a.URL()+"/readyz").Status }).WithContext(ctx).
			WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
	}, SpecTimeout(30*time.Second))

	It("is 503 with the reason of a failing readiness check, such as the disk guard", func(ctx SpecContext) {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		svc, err := actors.Start(log, false, actors.Config{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { svc.Stop(); _ = log.Close() })
		var full atomic.Bool
		srv := httptest.NewServer(transport.New(svc, transport.Config{Ready: func() error {
			if full.Load() {
				return errors.New("pebblestore: disk nearly full: 10 MiB free, 64 MiB kept free")
			}
			return nil
		}}).Handler())
		DeferCleanup(srv.Close)
		Expect(get(ctx, srv.URL+"/readyz").Status).To(Equal(http.StatusOK))
		full.Store(true)
		r := get(ctx, srv.URL+"/readyz")
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Expect(r.Error()).To(ContainSubstring("disk nearly full"))
	}, SpecTimeout(30*time.Second))
})
