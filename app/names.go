package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/names"
)

// NamesConfig configures the names added beside the ids of delivered
// killmails. The zero value adds the static names only (ships, systems,
// factions) and asks ESI nothing; the killfeed command turns ESI on by
// default (--names).
type NamesConfig struct {
	// ESI turns the lookups of character, corporation and alliance names
	// and tickers on.
	ESI bool
	// URL is ESI's base URL; "" means the RedisQ poller's (--esi-url), else
	// names.DefaultESIURL.
	URL string
	// Contact goes into the User-Agent of every ESI request (--esi-contact).
	Contact string
	// Wait bounds how long an insert waits for its names; 0 means
	// names.DefaultWait (1s).
	Wait time.Duration
	// TTL is how long a name is fresh; 0 means names.DefaultTTL (72h).
	TTL time.Duration
	// MaxEntries bounds the names kept in memory; 0 means
	// names.DefaultMaxEntries. On disk storage every name is also kept in
	// the data directory.
	MaxEntries int
}

// Validate reports invalid fields by their flag names.
func (c NamesConfig) Validate() error {
	var errs []error
	if c.Wait < 0 {
		errs = append(errs, fmt.Errorf("names-wait: must not be negative, got %s", c.Wait))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("names-ttl: must not be negative, got %s", c.TTL))
	}
	if c.MaxEntries < 0 {
		errs = append(errs, fmt.Errorf("names-cache: must not be negative, got %d", c.MaxEntries))
	}
	return errors.Join(errs...)
}

// startNames builds the resolver (over a keyspace of store, when on disk)
// and the renderer.
func startNames(cfg Config, store *pebblestore.Store, reg *prometheus.Registry) (*names.Resolver, *names.Renderer) {
	nc := cfg.Names
	rc := names.Config{Wait: nc.Wait, TTL: nc.TTL, MaxEntries: nc.MaxEntries, Logger: cfg.Logger.With("component", "names")}
	if store != nil {
		rc.Backing = store.Keyspace("names")
	}
	var res *names.Resolver
	rc.Metrics = metrics.NewNames(reg, func() int { return res.Len() })
	if nc.ESI {
		url := nc.URL
		if url == "" {
			url = cfg.Ingest.RedisQ.ESI.URL
		}
		if url == "" {
			url = ingest.DefaultESIURL
		}
		rc.Client = names.NewClient(names.ClientConfig{URL: url, Contact: nc.Contact, Logger: rc.Logger, Metrics: rc.Metrics})
	}
	res = names.NewResolver(rc)
	return res, names.NewRenderer(res, nil, 0)
}
