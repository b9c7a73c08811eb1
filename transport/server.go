package transport

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/universe"
)

// DefaultMaxBodyBytes bounds a POST body.
const DefaultMaxBodyBytes = 32 << 20

// Config tunes the HTTP surface. The zero value means the defaults.
type Config struct {
	// RequestTimeout is how long a request waits for the store; a
	// long-poll's wait comes on top. 0 means 5s.
	RequestTimeout time.Duration
	// IngestToken, when set, is the bearer token POST /api/killmails requires.
	IngestToken string
	// MaxSystems bounds the systems of one request; 0 means DefaultMaxSystems.
	MaxSystems int
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// CORSOrigins lists the Origin patterns (the syntax of
	// WebsocketConfig.AllowedOrigins; "*": any) whose pages may read the
	// HTTP API from a browser; empty means no CORS headers.
	CORSOrigins []string
	// ReadTimeout bounds how long a request body takes to arrive whole
	// (408 past it); 0 means DefaultReadTimeout, negative means none.
	ReadTimeout time.Duration
	// Websocket tunes the websocket endpoints.
	Websocket WebsocketConfig
	// Universe is the static data that maps systems to constellations and
	// regions; nil means universe.Default().
	Universe *universe.Universe
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Limits bounds what one client address may hold of the read routes.
	Limits LimitsConfig
	// ReadKeys, when set, are required by the read routes (polls,
	// listen.php, websockets), and bind each client_id to its first key.
	ReadKeys *ReadKeys
	// Registry receives the serving metrics and is served at GET /metrics;
	// nil means no metrics and no /metrics route.
	Registry *prometheus.Registry
	// EntityTopics makes a subscription of every system narrowed by an
	// entity (alliances[], corporations[]…) follow the PubSub topics of
	// those entities (see Topics) instead of every event, so that it is
	// handed only their killmails. An edge leaves it off: it follows its
	// core by system.
	EntityTopics bool
	// Names, when set, adds names beside the ids of delivered killmails:
	// by default on the native API, on request (names=true) on the
	// compatibility endpoints. nil delivers killmails as stored.
	Names Renderer
	// Ready, when set, is asked by GET /readyz after the store answered: a
	// non-nil error (e.g. the disk guard refusing writes) makes it 503 with
	// the error's text.
	Ready func() error
	// AdminToken, when set, serves the admin routes (GET /api/webhooks)
	// to requests that carry it as a bearer token; "" serves none.
	AdminToken string
	// Webhooks, when set, describes the configured webhooks for GET
	// /api/webhooks (a JSON-encodable value, secrets redacted).
	Webhooks func() any
}

// Server is the HTTP API over an actors.Service.
type Server struct {
	svc  *actors.Service
	cfg  Config
	echo *echo.Echo
	// draining is closed when shutdown begins: long-polls answer at once.
	draining  chan struct{}
	drainOnce sync.Once
	// unready makes GET /readyz answer 503 while requests are still
	// served: the drain grace before a shutdown (see Unready).
	unready  atomic.Bool
	ws       *wsHub
	universe *universe.Universe
	redisq   *redisqQueues
	limits   *limiter
	metrics  *metrics.Serving
}

// New builds the Echo routes over svc.
func New(svc *actors.Service, cfg Config) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.MaxSystems <= 0 {
		cfg.MaxSystems = DefaultMaxSystems
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Universe == nil {
		cfg.Universe = universe.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.JSONSerializer = plainJSON{}
	s := &Server{svc: svc, cfg: cfg, echo: e, draining: make(chan struct{}), universe: cfg.Universe, redisq: newRedisqQueues()}
	s.limits = newLimiter(cfg.Limits, cfg.Registry)
	e.HTTPErrorHandler = s.limits.limitErrors(errorHandler(cfg.Logger))

	s.httpMiddleware()
	e.GET("/healthz", s.health)
	e.HEAD("/healthz", s.health)
	// The read guard wraps its handlers here, once: as route middleware
	// Echo would wrap them again on every request.
	e.GET("/api/killfeed", s.readGuard(s.poll))
	e.GET("/api/killfeed/next", s.readGuard(s.next))
	e.POST("/api/killmails", s.ingest, s.requireToken, s.bodyDeadline)
	e.GET("/listen.php", s.readGuard(s.redisqListen))
	e.GET("/api/redisq/listen.php", s.readGuard(s.redisqListen))
	s.websocketRoutes()
	s.dashboardRoutes()
	s.adminRoutes()
	s.instrument()
	return s
}

// Drain makes waiting long-polls answer now with what they have, so that a
// graceful shutdown does not wait out their wait. Call it before
// http.Server.Shutdown.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Handler is the http.Handler serving the API.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the router so that other surfaces can add routes to it.
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) health(c echo.Context) error {
	ctx, cancel := s.requestContext(c, 0)
	defer cancel()
	b, err := s.svc.Fetch(ctx, &actors.FetchSince{})
	if err != nil {
		return err
	}
	st := s.svc.Stats()
	return c.JSON(http.StatusOK, map[string]any{
		"status": "ok", "head": b.Head, "oldest_event_id": b.Oldest,
		"events": st.Events, "bytes": st.Bytes, "clients": st.Clients,
	})
}
