package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every killfeed metric.
const Namespace = "killfeed"

// NewRegistry returns a registry with the Go runtime and process
// collectors registered; the service registers its own metrics on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in the Prometheus text format, or in OpenMetrics when
// the scraper asks for it (Accept: application/openmetrics-text).
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          reg,
	})
}

// register registers cs on reg; a nil reg registers nothing. (It takes the
// concrete type: a nil *Registry in a Registerer interface is not nil.)
func register(reg *prometheus.Registry, cs ...prometheus.Collector) {
	if reg == nil {
		return
	}
	reg.MustRegister(cs...)
}
