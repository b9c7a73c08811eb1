package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/universe"
)

// DefaultEdgeRemoteListen is where an edge's Proto.Actor remote binds when
// EdgeConfig.RemoteListen is empty: loopback, a free port. The core pushes
// events to this address, so a core on another machine needs
// --remote-listen (and --remote-advertise) set to an address it reaches.
const DefaultEdgeRemoteListen = "127.0.0.1:0"

// EdgeConfig configures an edge node: the HTTP surface of the core over a
// link to the core. The zero value of a field means its default; Node.Core
// is required.
type EdgeConfig struct {
	// Listen is the HTTP listen address; "" means ":8080".
	Listen string
	// RemoteListen is the host:port of this edge's Proto.Actor remote
	// (the core pushes events to it); "" means DefaultEdgeRemoteListen.
	RemoteListen string
	// RemoteAdvertise is the host:port the core reaches this edge at; ""
	// means the bound address.
	RemoteAdvertise string
	// Node configures the link to the core.
	Node edge.NodeConfig
	// IngestToken, when set, is required as a bearer token to POST killmails
	// (they are forwarded to the core).
	IngestToken string
	// RequestTimeout bounds how long a request waits for the core; 0 means 5s.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds a graceful shutdown; 0 means 10s.
	ShutdownTimeout time.Duration
	// ReadTimeout, IdleTimeout, DrainGrace and CORSOrigins are as in
	// Config: 0 (nil) means the default, a negative duration none.
	ReadTimeout, IdleTimeout, DrainGrace time.Duration
	CORSOrigins                          []string
	// Websocket tunes the websocket endpoints.
	Websocket transport.WebsocketConfig
	// Limits bounds what one client address may hold of the edge's read
	// routes; the zero value means the defaults.
	Limits transport.LimitsConfig
	// ReadKeysFile, when set, names the read keys file, as on the core
	// (deploy the same file to every node): the read routes require one of
	// its keys, and each client_id is bound to its first key at the core,
	// whichever node it reads through. Edge.Reload re-reads it.
	ReadKeysFile string
	// Reload, when set, makes RunEdge call Edge.Reload on every value
	// received (cmd/killfeed sends SIGHUP).
	Reload <-chan os.Signal
	// NoMetrics turns the Prometheus metrics and GET /metrics off; the zero
	// value serves them: the edge's serving metrics and its link's.
	NoMetrics bool
	// Logger receives every log line; nil discards them.
	Logger *slog.Logger
}

// Validate reports invalid fields by their flag names.
func (c EdgeConfig) Validate() error {
	var errs []error
	errs = append(errs, c.Node.Validate())
	if c.RemoteListen != "" {
		if _, _, err := net.SplitHostPort(c.RemoteListen); err != nil {
			errs = append(errs, fmt.Errorf("remote-listen: %v", err))
		}
	}
	for name, d := range map[string]time.Duration{"request-timeout": c.RequestTimeout, "shutdown-timeout": c.ShutdownTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// remoteStopWait bounds how long an edge's shutdown waits for Proto.Actor
// remote to stop (see Shutdown).
const remoteStopWait = 2 * time.Second

// Edge is a running edge node.
type Edge struct {
	cfg    EdgeConfig
	node   *edge.Node
	keys   *transport.ReadKeys // nil without ReadKeysFile
	reg    *prometheus.Registry
	actors *actors.Service
	remote *ingest.Remote
	api    *transport.Server
	http   *http.Server
	ln     net.Listener
	served chan error

	shutdownOnce sync.Once
	shutdownErr  error
}

// StartEdge starts an edge: its actors (the store stands in for the
// core's), Proto.Actor remote, the link to the core, and HTTP. It returns
// once the listener is bound; the link comes up in the background
// (/readyz says when).
func StartEdge(cfg EdgeConfig) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if cfg.RemoteListen == "" {
		cfg.RemoteListen = DefaultEdgeRemoteListen
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.DrainGrace == 0 {
		cfg.DrainGrace = DefaultDrainGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger
	var keys *transport.ReadKeys
	if cfg.ReadKeysFile != "" {
		k, err := transport.LoadReadKeys(cfg.ReadKeysFile)
		if err != nil {
			return nil, err
		}
		keys = k
	}
	var reg *prometheus.Registry
	if !cfg.NoMetrics {
		reg = metrics.NewRegistry()
	}
	nc := cfg.Node
	nc.Registry = reg
	if nc.RequestTimeout <= 0 {
		nc.RequestTimeout = cfg.RequestTimeout
	}
	if nc.Logger == nil {
		nc.Logger = logger.With("component", "edge")
	}
	node, err := edge.NewNode(nc)
	if err != nil {
		return nil, err
	}
	svc, err := actors.StartEdge(actors.Config{
		RequestTimeout: cfg.RequestTimeout,
		Topics:         transport.Topics(universe.Default()),
		// Proto.Actor remote logs its connection retries to an absent core
		// every few seconds; the relay logs the outage once instead.
		Logger: slog.New(edge.QuietRemote(logger.Handler())),
	}, node.Upstream())
	if err != nil {
		return nil, err
	}
	rem, err := ingest.StartRemote(svc, ingest.RemoteConfig{Listen: cfg.RemoteListen, Advertise: cfg.RemoteAdvertise, Logger: logger.With("source", "remote")})
	if err != nil {
		svc.Stop()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		rem.Stop()
		svc.Stop()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	node.Connect(svc)
	api := transport.New(svc, transport.Config{
		RequestTimeout: cfg.RequestTimeout,
		ReadTimeout:    cfg.ReadTimeout,
		CORSOrigins:    cfg.CORSOrigins,
		IngestToken:    cfg.IngestToken,
		Websocket:      cfg.Websocket,
		Limits:         cfg.Limits,
		ReadKeys:       keys,
		Registry:       reg,
		Logger:         logger,
		// The core sends its rendering of the names with every event; this
		// one adds static names to events from a core that sends none.
		Names: names.NewRenderer(nil, nil, 0),
		// GET /readyz: 200 only while the edge is in step with its core, so
		// that a load balancer sends new clients elsewhere; /healthz stays
		// 200 meanwhile (the edge is alive).
		Ready: node.Check,
	})
	e := &Edge{
		cfg: cfg, node: node, keys: keys, reg: reg, actors: svc, remote: rem, api: api, ln: ln,
		served: make(chan error, 1),
		http: &http.Server{
			Handler:           api.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       max(cfg.IdleTimeout, 0), // negative: none
		},
	}
	go func() { e.served <- e.http.Serve(ln) }()
	logger.Info("killfeed listening", "addr", ln.Addr().String(), "role", "edge", "core", nc.Core, "remote", rem.Address())
	return e, nil
}

// Addr is the bound HTTP address.
func (e *Edge) Addr() net.Addr { return e.ln.Addr() }

// URL is the base URL of the bound HTTP address.
func (e *Edge) URL() string { return "http://" + e.ln.Addr().String() }

// RemoteAddress is the host:port of the edge's Proto.Actor remote.
func (e *Edge) RemoteAddress() string { return e.remote.Address() }

// Ready says whether the edge is in step with its core.
func (e *Edge) Ready() bool { return e.node.Ready() }

// Registry is the edge's metrics registry (served at GET /metrics); nil
// when EdgeConfig.NoMetrics.
func (e *Edge) Registry() *prometheus.Registry { return e.reg }

// Reload re-reads the read keys file, as App.Reload does on the core. On
// an error the keys stay as they were. Without EdgeConfig.ReadKeysFile it
// does nothing.
func (e *Edge) Reload() error {
	if e.keys == nil {
		return nil
	}
	if err := e.keys.Reload(); err != nil {
		e.cfg.Logger.Error("reload failed; the read keys are unchanged", "err", err)
		return err
	}
	e.cfg.Logger.Info("read keys reloaded", "keys", e.keys.Len())
	return nil
}

// onSignal calls f on every value of ch until the returned stop runs.
func onSignal(ch <-chan os.Signal, f func() error) (stop func()) {
	if ch == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				_ = f()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Shutdown stops HTTP, closes websockets with 1001, says goodbye to the
// core and stops the actors. Later calls return the first call's result.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		var errs []error
		e.api.Drain()
		if err := e.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown http: %w", err))
		}
		if err := e.api.CloseWebsockets(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close websockets: %w", err))
		}
		// The relay says Bye on stopping: stop the tree while remote runs.
		e.actors.Stop()
		// With the core gone, Proto.Actor's endpoint writer may sit in its
		// connect retries (seconds each) and hold up the remote's stop:
		// wait for it only as long as the shutdown may take.
		stopped := make(chan struct{})
		go func() { e.remote.Stop(); close(stopped) }()
		wait := time.NewTimer(remoteStopWait)
		defer wait.Stop()
		select {
		case <-stopped:
		case <-wait.C:
			e.cfg.Logger.Warn("remote did not stop in time; exiting without it", "waited", remoteStopWait)
		case <-ctx.Done():
			e.cfg.Logger.Warn("remote did not stop in time; exiting without it", "err", ctx.Err())
		}
		if err := <-e.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
		e.shutdownErr = errors.Join(errs...)
	})
	return e.shutdownErr
}

// RunEdge starts an edge and serves until ctx is done, then shuts down
// within cfg.ShutdownTimeout.
func RunEdge(ctx context.Context, cfg EdgeConfig) error {
	e, err := StartEdge(cfg)
	if err != nil {
		return err
	}
	stopReload := onSignal(cfg.Reload, e.Reload)
	select {
	case <-ctx.Done():
	case err := <-e.served:
		e.served <- err
	}
	stopReload()
	drainGrace(e.api, e.served, e.cfg.DrainGrace, e.cfg.Logger)
	e.cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout)
	defer cancel()
	return e.Shutdown(sctx)
}

// withEdgeEndpoint starts the core's edge endpoint beside the remote ingest
// endpoint (edges reach the core at its --remote-listen address); the
// returned stop stops it, then what stop stopped.
func withEdgeEndpoint(cfg Config, svc *actors.Service, render *names.Renderer, stop func()) (func(), error) {
	if cfg.Ingest.Remote.Listen == "" {
		return stop, nil
	}
	core, err := edge.StartCore(svc, edge.CoreConfig{Timeout: cfg.RequestTimeout, Logger: cfg.Logger.With("component", "edge-endpoint"),
		Render: render.RenderPartial})
	if err != nil {
		stop()
		return nil, err
	}
	return func() { core.Stop(); stop() }, nil
}
