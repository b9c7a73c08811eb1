package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/metrics"
)

// newRegistry returns the App's metrics registry, with the Go runtime,
// process and (for the disk backend) Pebble collectors on it; nil when
// cfg.NoMetrics.
func newRegistry(cfg Config, store *pebblestore.Store) *prometheus.Registry {
	if cfg.NoMetrics {
		return nil
	}
	reg := metrics.NewRegistry()
	if store != nil {
		metrics.NewStorage(reg, store.Metrics, store.CheckFree)
	}
	return reg
}

// withUpstreamMetrics gives the upstream sources their metrics on reg,
// unless the config brought its own.
func withUpstreamMetrics(cfg Config, reg *prometheus.Registry) Config {
	m := metrics.NewUpstream(reg)
	if cfg.Ingest.R2Z2.Metrics == nil {
		cfg.Ingest.R2Z2.Metrics = m
	}
	if cfg.Ingest.RedisQ.Metrics == nil {
		cfg.Ingest.RedisQ.Metrics = m
	}
	return cfg
}

// storeReady is the readiness check of the storage: the disk guard must
// accept writes. nil for the memory backend.
func storeReady(store *pebblestore.Store) func() error {
	if store == nil {
		return nil
	}
	return store.CheckFree
}

// Registry is the App's metrics registry (served at GET /metrics); nil
// when Config.NoMetrics.
func (a *App) Registry() *prometheus.Registry { return a.registry }
