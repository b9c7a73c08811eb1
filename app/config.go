package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/webhook"
)

// Storage backends.
const (
	StorageMemory = "memory"
	StorageDisk   = "disk"
)

// DefaultMinRetention is the default Config.MinRetention.
const DefaultMinRetention = time.Hour

// DefaultIdleTimeout is the default Config.IdleTimeout.
const DefaultIdleTimeout = 2 * time.Minute

// DefaultDrainGrace is the default Config.DrainGrace.
const DefaultDrainGrace = 5 * time.Second

// Config is the whole service configuration. The zero value of a field
// means its default.
type Config struct {
	// Listen is the HTTP listen address; "" means ":8080".
	Listen string
	// Storage is StorageDisk or StorageMemory; "" means StorageDisk.
	Storage string
	// DataDir is where StorageDisk keeps its data; "" means "./killfeed-data".
	DataDir string
	// GCInterval is how often retention runs; 0 means 60s.
	GCInterval time.Duration
	// OffsetFlush bounds how long a changed client offset stays unpersisted; 0 means 1s.
	OffsetFlush time.Duration
	// ClientTTL expires idle clients; 0 means 24h.
	ClientTTL time.Duration
	// MaxEvents caps retained events; 0 means 1,000,000.
	MaxEvents int
	// MaxScan is how many events one filtered read considers at most
	// before it answers "more"; 0 means eventlog.DefaultMaxScan (10,000).
	MaxScan int
	// MaxBytes caps retained killmail bytes; 0 means 2 GiB.
	MaxBytes int64
	// MaxAge drops older events and is how long killmail ids are remembered; 0 means 72h.
	MaxAge time.Duration
	// MinRetention keeps events younger than this even when every client
	// has read them, so that a new client can backfill; 0 means
	// DefaultMinRetention, negative means none.
	MinRetention time.Duration
	// IngestToken, when set, is required as a bearer token to POST killmails.
	IngestToken string
	// RequestTimeout bounds how long a request waits for the store; 0 means 5s.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds a graceful shutdown; 0 means 10s.
	ShutdownTimeout time.Duration
	// ReadTimeout bounds how long a request body takes to arrive whole; 0
	// means transport.DefaultReadTimeout, negative means none. Long-polls
	// and websockets are not cut by it.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long between
	// requests; 0 means DefaultIdleTimeout, negative means none.
	IdleTimeout time.Duration
	// DrainGrace is how long Run keeps serving with GET /readyz answering
	// 503 after ctx is done, before the listener closes, so that a load
	// balancer takes the node out first; 0 means DefaultDrainGrace,
	// negative means none.
	DrainGrace time.Duration
	// CORSOrigins lists the Origin patterns whose pages may read the HTTP
	// API from a browser (see transport.Config.CORSOrigins); empty means
	// no CORS headers.
	CORSOrigins []string
	// Websocket tunes the websocket endpoints.
	Websocket transport.WebsocketConfig
	// Ingest configures the upstream sources.
	Ingest IngestConfig
	// Limits bounds what one client address may hold (see
	// transport.LimitsConfig); the zero value means the defaults.
	Limits transport.LimitsConfig
	// MaxClients caps the live polling clients: a poll that would create a
	// new client_id past it is refused (429). 0 means DefaultMaxClients;
	// negative means no cap.
	MaxClients int
	// ReadKeysFile, when set, names the read keys file: the read endpoints
	// then require one of its keys (see transport.LoadReadKeys), and
	// App.Reload re-reads it.
	ReadKeysFile string
	// WebhooksFile, when set, names the webhooks file (see
	// webhook.Parse): each entry is delivered by the core, and App.Reload
	// re-reads it.
	WebhooksFile string
	// Webhooks tunes webhook delivery (timeouts, backoff); its Logger and
	// Registry are the App's.
	Webhooks webhook.Config
	// AdminToken, when set, serves GET /api/webhooks to requests with it
	// as a bearer token; "" serves no admin route.
	AdminToken string
	// Reload, when set, makes Run call App.Reload on every value received
	// (cmd/killfeed sends SIGHUP).
	Reload <-chan os.Signal
	// Logger receives every log line; nil discards them.
	Logger *slog.Logger
	// Names configures the names added beside ids (see NamesConfig).
	Names NamesConfig
	// NoMetrics turns the Prometheus metrics and GET /metrics off; the zero
	// value serves them.
	NoMetrics bool
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Storage == "" {
		c.Storage = StorageDisk
	}
	if c.DataDir == "" {
		c.DataDir = "./killfeed-data"
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = DefaultDrainGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field by its flag name.
func (c Config) Validate() error {
	var errs []error
	if c.Storage != "" && c.Storage != StorageMemory && c.Storage != StorageDisk {
		errs = append(errs, fmt.Errorf("storage: %q is not %q or %q", c.Storage, StorageMemory, StorageDisk))
	}
	for name, d := range map[string]time.Duration{
		"gc-interval": c.GCInterval, "offset-flush": c.OffsetFlush, "client-ttl": c.ClientTTL,
		"max-age": c.MaxAge, "request-timeout": c.RequestTimeout, "shutdown-timeout": c.ShutdownTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", name, d))
		}
	}
	if c.MaxEvents < 0 {
		errs = append(errs, fmt.Errorf("max-events: must not be negative, got %d", c.MaxEvents))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max-bytes: must not be negative, got %d", c.MaxBytes))
	}
	errs = append(errs, c.validateLimits())
	errs = append(errs, c.Ingest.Validate())
	errs = append(errs, c.Names.Validate())
	return errors.Join(errs...)
}
