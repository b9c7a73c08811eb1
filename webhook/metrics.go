package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/metrics"
)

// Reasons a delivery attempt failed: the label values of
// killfeed_webhook_failed_attempts_total.
const (
	reasonRateLimited = "rate_limited" // a 429
	reasonRejected    = "rejected"     // another 4xx, a redirect
	reasonUnavailable = "unavailable"  // no answer, a 5xx, a timeout
)

// States of a webhook.
const (
	StateStarting    = "starting"     // joining the log
	StateIdle        = "idle"         // caught up, waiting for killmails
	StateDelivering  = "delivering"   // posting
	StateRetrying    = "retrying"     // backing off after a failed attempt
	StateRateLimited = "rate_limited" // waiting out a 429 or an empty bucket
	StateFailed      = "failed"       // stopped until the file is reloaded
)

var states = []string{StateStarting, StateIdle, StateDelivering, StateRetrying, StateRateLimited, StateFailed}

// hookMetrics are the metrics of every webhook, by name.
type hookMetrics struct {
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
}

// collector exports the gauges read from the running webhooks at scrape.
type collector struct {
	m     *Manager
	lag   *prometheus.Desc
	state *prometheus.Desc
}

func newMetrics(reg *prometheus.Registry, m *Manager) *hookMetrics {
	hm := &hookMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "webhook_delivered_total",
			Help: "Killmails delivered by each webhook (answered 2xx).",
		}, []string{"webhook"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "webhook_failed_attempts_total",
			Help: "Delivery attempts of each webhook that failed, by reason: rate_limited (429), rejected (another 4xx or a redirect), unavailable (no answer, 5xx, timeout).",
		}, []string{"webhook", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(hm.delivered, hm.failed, &collector{
			m: m,
			lag: prometheus.NewDesc(metrics.Namespace+"_webhook_lag_events",
				"Events stored after each webhook's position (delivered or skipped by its filter).", []string{"webhook"}, nil),
			state: prometheus.NewDesc(metrics.Namespace+"_webhook_state",
				"1 for each webhook's state: starting, idle, delivering, retrying, rate_limited, failed.", []string{"webhook", "state"}, nil),
		})
	}
	return hm
}

func (hm *hookMetrics) forget(name string) {
	hm.delivered.DeleteLabelValues(name)
	hm.failed.DeletePartialMatch(prometheus.Labels{"webhook": name})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.state
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Status() {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), s.Name)
		for _, st := range states {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s.Name, st)
		}
	}
}
