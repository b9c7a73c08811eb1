package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/universe"
)

// App is a running killfeed.
type App struct {
	cfg    Config
	log    *eventlog.Log
	actors *actors.Service
	http   *http.Server
	api    *transport.Server
	ln     net.Listener
	served chan error
	// stopIngest stops the upstream sources and waits for them.
	stopIngest func()
	// keys are the read keys; nil without Config.ReadKeysFile.
	keys *transport.ReadKeys
	// registry holds the App's metrics; nil when cfg.NoMetrics.
	registry *prometheus.Registry
	// hooks delivers the webhooks; nil without Config.WebhooksFile.
	hooks *webhooks
	// names resolves and adds the names beside ids.
	names *names.Resolver

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens storage, spawns the actors and starts serving HTTP. It
// returns once the listener is bound; Addr tells where.
func Start(cfg Config) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger

	keys, err := cfg.readKeys()
	if err != nil {
		return nil, err
	}
	hooks, err := cfg.loadWebhooks()
	if err != nil {
		return nil, err
	}
	log, store, err := openLog(cfg)
	if err != nil {
		return nil, err
	}
	durable := store != nil
	reg := newRegistry(cfg, store)
	res, render := startNames(cfg, store, reg)
	svc, err := actors.Start(log, durable, actors.Config{
		BeforeInsert:   res.Warm,
		Registry:       reg,
		GCInterval:     cfg.GCInterval,
		FlushInterval:  cfg.OffsetFlush,
		RequestTimeout: cfg.RequestTimeout,
		Topics:         transport.Topics(universe.Default()),
		Logger:         logger,
	})
	if err != nil {
		res.Close()
		_ = log.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		svc.Stop()
		res.Close()
		_ = log.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	hooked := startWebhooks(cfg, svc, reg, hooks, render)
	api := transport.New(svc, transport.Config{
		EntityTopics:   true,
		RequestTimeout: cfg.RequestTimeout,
		ReadTimeout:    cfg.ReadTimeout,
		CORSOrigins:    cfg.CORSOrigins,
		IngestToken:    cfg.IngestToken,
		Websocket:      cfg.Websocket,
		Logger:         logger,
		Limits:         cfg.Limits,
		ReadKeys:       keys,
		Registry:       reg,
		Ready:          storeReady(store),
		AdminToken:     cfg.AdminToken,
		Webhooks:       hooked.status,
		Names:          render,
	})
	if cfg.Names.ESI {
		cfg.Ingest.R2Z2.Names, cfg.Ingest.RedisQ.Names = res, res
	}
	stopIngest, err := startIngest(withUpstreamMetrics(cfg, reg), svc)
	if err == nil {
		stopIngest, err = withEdgeEndpoint(cfg, svc, render, stopIngest)
	}
	if err != nil {
		hooked.close()
		_ = ln.Close()
		svc.Stop()
		res.Close()
		_ = log.Close()
		return nil, err
	}
	a := &App{
		cfg:        cfg,
		log:        log,
		actors:     svc,
		api:        api,
		ln:         ln,
		served:     make(chan error, 1),
		stopIngest: stopIngest,
		keys:       keys,
		registry:   reg,
		hooks:      hooked,
		names:      res,
		http: &http.Server{
			Handler:           api.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       max(cfg.IdleTimeout, 0), // negative: none
			ErrorLog:          nil,
		},
	}
	go func() { a.served <- a.http.Serve(ln) }()
	if cfg.IngestToken == "" {
		logger.Info("ingest open to loopback clients only: POST /api/killmails from other addresses needs --ingest-token",
			"trusted_proxies", len(cfg.Limits.TrustedProxies))
	}
	st := log.Stats()
	logger.Info("killfeed listening", "addr", ln.Addr().String(), "storage", cfg.Storage,
		"events", st.Events, "head", st.Head)
	return a, nil
}

// openLog opens the log; store is the Pebble store under it, nil for the
// memory backend.
func openLog(cfg Config) (*eventlog.Log, *pebblestore.Store, error) {
	lc := eventlog.Config{
		MaxEvents: cfg.MaxEvents,
		MaxScan:   cfg.MaxScan,
		MaxBytes:  cfg.MaxBytes,
		MaxAge:    cfg.MaxAge,
		ClientTTL: cfg.ClientTTL,
	}
	switch {
	case cfg.MinRetention == 0:
		lc.MinRetention = DefaultMinRetention
	case cfg.MinRetention > 0:
		lc.MinRetention = cfg.MinRetention
	}
	lc.MaxClients = cfg.maxClients()
	if cfg.Storage == StorageMemory {
		log, err := eventlog.Open(lc, nil)
		return log, nil, err
	}
	start := time.Now()
	store, err := pebblestore.Open(cfg.DataDir, pebblestore.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("open storage: %w", err)
	}
	log, err := eventlog.Open(lc, store)
	if err != nil {
		_ = store.Close()
		return nil, nil, fmt.Errorf("open storage %s: %w", cfg.DataDir, err)
	}
	st := log.Stats()
	cfg.Logger.Info("storage loaded", "dir", cfg.DataDir, "events", st.Events, "clients", st.Clients,
		"bytes", st.Bytes, "head", st.Head, "took", time.Since(start).Round(time.Millisecond))
	return log, store, nil
}

// Addr is the bound HTTP address.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// URL is the base URL of the bound HTTP address, e.g. http://127.0.0.1:8080.
func (a *App) URL() string { return "http://" + a.ln.Addr().String() }

// API is the HTTP and websocket surface.
func (a *App) API() *transport.Server { return a.api }

// Actors is the actor service, the Go API of the running store.
func (a *App) Actors() *actors.Service { return a.actors }

// Shutdown stops in order: upstream sources, HTTP (in-flight requests
// finish), websockets (closed with 1001), actors, then storage (offsets
// flushed, files closed). Later calls return the first call's result.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() { a.shutdownErr = a.shutdown(ctx) })
	return a.shutdownErr
}

func (a *App) shutdown(ctx context.Context) error {
	var errs []error
	a.stopIngest()
	a.api.Drain()
	if err := a.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown http: %w", err))
	}
	if err := a.api.CloseWebsockets(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close websockets: %w", err))
	}
	a.hooks.close()
	a.actors.Stop()
	a.names.Close() // before the log: its keyspace lives in the store
	if err := a.log.Close(); err != nil && !errors.Is(err, eventlog.ErrClosed) {
		errs = append(errs, fmt.Errorf("close log: %w", err))
	}
	if err := <-a.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	return errors.Join(errs...)
}

// drainGrace answers GET /readyz 503 for grace while api serves
// everything else, so that a load balancer stops sending traffic before
// the listener closes. A listener that failed (served has its error) skips
// it; so does a grace of 0 or less.
func drainGrace(api *transport.Server, served chan error, grace time.Duration, logger *slog.Logger) {
	if grace <= 0 {
		return
	}
	select {
	case err := <-served:
		served <- err
		return
	default:
	}
	logger.Info("draining: /readyz answers 503 until the listener closes", "grace", grace)
	api.Unready()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-t.C:
	case err := <-served:
		served <- err
	}
}

// Run starts the service and serves until ctx is done, then shuts down
// within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg Config) error {
	a, err := Start(cfg)
	if err != nil {
		return err
	}
	stopReload := onSignal(cfg.Reload, a.Reload)
	select {
	case <-ctx.Done():
	case err := <-a.served: // the listener failed; Shutdown reports it
		a.served <- err
	}
	stopReload()
	drainGrace(a.api, a.served, a.cfg.DrainGrace, a.cfg.Logger)
	a.cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	return a.Shutdown(sctx)
}
