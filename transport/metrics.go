package transport

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/metrics"
)

// observedRoutes are the route patterns whose request durations are
// observed: the polls, the ingest and RedisQ. Websocket upgrades, health
// and /metrics are not.
var observedRoutes = []string{"/api/killfeed", "/api/killfeed/next", "/api/killmails", "/listen.php", "/api/redisq/listen.php"}

// noWS counts the websocket events of sessions built without a Server
// (tests): they export nowhere.
var noWS = metrics.NewServing(nil).WS(metrics.ProtocolNative)

// instrument defines the serving metrics on cfg.Registry, observes the
// observed routes, and serves GET /metrics (when there is a registry) and
// GET /readyz.
func (s *Server) instrument() {
	s.metrics = metrics.NewServing(s.cfg.Registry)
	routes := make(map[string]*metrics.Route, len(observedRoutes))
	for _, p := range observedRoutes {
		routes[p] = s.metrics.Route(p)
	}
	// Wrap the handlers of the observed routes where they are stored, once:
	// an Echo middleware would build its closure on every request.
	for _, rt := range s.echo.Routes() {
		r := routes[rt.Path]
		if r == nil {
			continue
		}
		req, err := http.NewRequest(rt.Method, rt.Path, nil)
		if err != nil {
			panic(err) // a registered route's method and path are valid
		}
		c := s.echo.NewContext(req, nil)
		s.echo.Router().Find(rt.Method, rt.Path, c)
		s.echo.Router().Add(rt.Method, rt.Path, observe(r, c.Handler()))
	}
	s.echo.GET("/readyz", s.ready)
	s.echo.HEAD("/readyz", s.ready)
	if s.cfg.Registry != nil {
		s.echo.GET("/metrics", echo.WrapHandler(metrics.Handler(s.cfg.Registry)))
	}
}

// observe wraps a route's handler: it answers an error itself, so that the
// status is known, and observes the request's duration.
func observe(r *metrics.Route, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		longPoll := isLongPoll(c)
		if err := next(c); err != nil {
			c.Error(err)
		}
		r.Observe(c.Response().Status, longPoll, time.Since(start).Seconds())
		return nil
	}
}

// wsMetrics returns the counters of proto's websockets.
func (s *Server) wsMetrics(proto wsProtocol) *metrics.WS {
	name := metrics.ProtocolNative
	switch proto.(type) {
	case phoenixProtocol:
		name = metrics.ProtocolPhoenix
	case zkillProtocol:
		name = metrics.ProtocolZKill
	}
	return s.metrics.WS(name)
}

// ingestSource is the metrics source of a POST /api/killmails.
func ingestSource(r *http.Request) string {
	if r.Header.Get(metrics.SourceHeader) == metrics.SourceImport {
		return metrics.SourceImport
	}
	return metrics.SourceHTTP
}
