package transport

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// Defaults of a zero WebsocketConfig.
const (
	DefaultWSBuffer       = 1024
	DefaultWSPingInterval = 30 * time.Second
	DefaultWSWriteTimeout = 5 * time.Second
	DefaultWSReadLimit    = 256 << 10
	// wsCloseGrace bounds how long a slow consumer has to read what is in
	// flight and the close frame behind it.
	wsCloseGrace = 5 * time.Second
	// wsReplayPage is how many events one replay read returns.
	wsReplayPage = 512
	// wsCheckpointInterval is how often the offsets of a client_id
	// subscription are moved to the head when the connection is idle.
	wsCheckpointInterval = time.Second
)

// WebsocketConfig tunes the websocket endpoints (GET /api/ws and GET
// /socket/websocket). The zero value means the defaults.
type WebsocketConfig struct {
	// MaxSystems bounds the systems one connection follows; 0 means
	// DefaultMaxSystems (5000).
	MaxSystems int
	// Buffer is how many events may wait for one connection before it is
	// closed as a slow consumer (1008); 0 means DefaultWSBuffer (1024).
	Buffer int
	// AllowedOrigins lists the Origin host patterns (path.Match syntax, e.g.
	// "*.example.com") accepted besides the request's own host; "*" accepts
	// any origin. Empty means same-origin only (clients that send no Origin,
	// like most non-browser clients, are always accepted).
	AllowedOrigins []string
	// PingInterval is how often a keepalive ping is sent (give or take 10 %,
	// so that connections opened together do not ping together); a peer
	// from which nothing (its pong or any other frame) arrives within
	// WriteTimeout of a ping is dropped. 0 means 30s; negative disables
	// pings.
	PingInterval time.Duration
	// WriteTimeout bounds every write to a connection; 0 means 5s.
	WriteTimeout time.Duration
	// ReadLimit bounds a client frame in bytes; a larger frame closes the
	// connection with 1009. 0 means 256 KiB.
	ReadLimit int64
	// SubscribeRate is how many subscribe frames a second one connection
	// may send, after a burst of SubscribeBurst; past it a subscribe is
	// answered with an error frame and the connection stays open. 0 means
	// DefaultWSSubscribeRate and DefaultWSSubscribeBurst.
	SubscribeRate  rate.Limit
	SubscribeBurst int

	entityTopics bool // Config.EntityTopics
}

// Defaults of the subscribe pacing (WebsocketConfig.SubscribeRate).
const (
	DefaultWSSubscribeRate  rate.Limit = 10
	DefaultWSSubscribeBurst int        = 50
)

func (c WebsocketConfig) withDefaults() WebsocketConfig {
	if c.MaxSystems <= 0 {
		c.MaxSystems = DefaultMaxSystems
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultWSBuffer
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultWSPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWSWriteTimeout
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultWSReadLimit
	}
	if c.SubscribeRate <= 0 {
		c.SubscribeRate = DefaultWSSubscribeRate
	}
	if c.SubscribeBurst <= 0 {
		c.SubscribeBurst = DefaultWSSubscribeBurst
	}
	return c
}

func (c WebsocketConfig) acceptOptions() *websocket.AcceptOptions {
	opts := &websocket.AcceptOptions{}
	for _, o := range c.AllowedOrigins {
		if o = strings.TrimSpace(o); o == "*" {
			opts.InsecureSkipVerify = true
		} else if o != "" {
			opts.OriginPatterns = append(opts.OriginPatterns, o)
		}
	}
	return opts
}

// wsHub tracks the open websocket connections of a Server:
// http.Server.Shutdown does not close hijacked connections.
type wsHub struct {
	cfg     WebsocketConfig
	origins origins // cfg.AllowedOrigins, trimmed once
	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closing bool
	wg      sync.WaitGroup
	pool    *drainPool
	keep    *keepalive // nil when pings are off
}

// wsConn is one tracked connection; cancel (and the session's goAway) ask
// it to close with 1001.
type wsConn struct {
	cancel  context.CancelFunc
	release func()          // gives back its place under the websocket limits
	conn    *websocket.Conn // nil until accepted
	sess    *session        // nil until accepted
}

// websocketRoutes registers the websocket endpoints.
func (s *Server) websocketRoutes() {
	cfg := s.cfg.Websocket.withDefaults()
	cfg.entityTopics = s.cfg.EntityTopics
	s.ws = &wsHub{cfg: cfg, origins: newOrigins(cfg.AllowedOrigins), conns: make(map[*wsConn]struct{}), pool: newDrainPool(), keep: newKeepalive(cfg)}
	s.echo.GET("/api/ws", func(c echo.Context) error { return s.serveWebsocket(c, nativeProtocol{}) }, s.readGuard)
	s.echo.GET("/socket/websocket", s.servePhoenix, s.readGuard)
	zkill := func(c echo.Context) error { return s.serveWebsocket(c, zkillProtocol{}) }
	s.echo.GET("/websocket/", zkill, s.readGuard)
	s.echo.GET("/websocket", zkill, s.readGuard)
}

func (h *wsHub) add(wc *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[wc] = struct{}{}
	h.wg.Add(1)
	return true
}

// accepted records the session of wc; false means that shutdown began in
// the meantime, and the session was told to go away.
func (h *wsHub) accepted(wc *wsConn, conn *websocket.Conn, sess *session) {
	h.mu.Lock()
	wc.conn, wc.sess = conn, sess
	closing := h.closing
	h.mu.Unlock()
	if closing {
		sess.goAway()
	}
}

func (h *wsHub) remove(wc *wsConn) {
	h.mu.Lock()
	delete(h.conns, wc)
	h.mu.Unlock()
	wc.cancel()
	if wc.release != nil {
		wc.release()
	}
	h.wg.Done()
}

// serveWebsocket upgrades the request and starts a session on the
// connection. The session runs on a goroutine of its own and the handler
// returns at once: the connection is hijacked, Echo must not write to it
// (echo#2523), and the request, its buffers and the handler's deep stack are
// not kept for the life of the connection. The hub tracks the session.
func (s *Server) serveWebsocket(c echo.Context, proto wsProtocol) error {
	h := s.ws
	if !h.origins.originAllowed(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, "Origin: "+strconv.Quote(c.Request().Header.Get("Origin"))+
			" is not allowed for this host (--ws-allowed-origins)")
	}
	names, err := parseNamesParam(c.QueryParams(), namesDefault(proto))
	if err != nil {
		return err
	}
	release, _, reason := s.limits.admitWebsocket(c)
	if reason != "" {
		return s.refuseWebsocket(c, reason)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wc := &wsConn{cancel: cancel, release: release}
	if !h.add(wc) {
		cancel()
		release()
		return echo.NewHTTPError(http.StatusServiceUnavailable, "shutting down")
	}
	hw := &hijackWriter{ResponseWriter: c.Response()}
	conn, err := websocket.Accept(hw, c.Request(), h.cfg.acceptOptions())
	if err != nil {
		h.remove(wc)
		return nil // Accept wrote the response
	}
	conn.SetReadLimit(h.cfg.ReadLimit)
	sess := newSession(ctx, s.svc, s.universe, conn, hw.conn, h.cfg, proto, h.pool, h.keep, s.cfg.Logger)
	sess.owner = ownerOf(c)
	sess.render, sess.names = s.cfg.Names, names
	wsm := s.wsMetrics(proto)
	sess.metrics = wsm
	wsm.Opened.Inc()
	wsm.Open.Inc()
	h.accepted(wc, conn, sess)
	sess.start(func() { wsm.Open.Dec(); h.remove(wc) })
	return nil
}

// CloseWebsockets closes every open websocket with 1001 (going away) and
// waits for their handlers to finish. Connections that do not complete the
// close handshake before ctx is done are dropped. New connections are
// refused while it runs.
func (s *Server) CloseWebsockets(ctx context.Context) error {
	h := s.ws
	h.mu.Lock()
	h.closing = true
	for wc := range h.conns {
		wc.cancel()
		if wc.sess != nil {
			wc.sess.goAway()
		}
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.closing = false
		h.mu.Unlock()
	}()

	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for wc := range h.conns {
		if wc.conn != nil {
			go wc.conn.CloseNow() // each may spend a moment flushing what it corked
		}
	}
	h.mu.Unlock()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return errors.Join(errors.New("websockets still open after the shutdown deadline were dropped"), ctx.Err())
}
