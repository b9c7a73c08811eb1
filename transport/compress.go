package transport

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// gzipMinLength is the smallest answer worth compressing.
const gzipMinLength = 1024

// websocketPath reports whether path is a websocket route, which neither
// gzip (the connection is hijacked) nor CORS (browsers check Origin on the
// handshake instead) applies to.
func websocketPath(path string) bool {
	switch path {
	case "/api/ws", "/socket/websocket", "/websocket", "/websocket/":
		return true
	}
	return false
}

// httpMiddleware adds what every HTTP answer gets: gzip when the client
// sends Accept-Encoding: gzip (not on websocket routes, nor on the
// dashboard's files and /metrics, which compress themselves), and, with
// Config.CORSOrigins, CORS headers for the origins it allows.
func (s *Server) httpMiddleware() {
	s.echo.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		MinLength: gzipMinLength,
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return websocketPath(p) || p == "/" || strings.HasPrefix(p, "/ui/") || p == "/api/universe" || p == "/metrics"
		},
	}))
	allowed := newOrigins(s.cfg.CORSOrigins)
	if len(allowed) == 0 {
		return
	}
	cors := middleware.CORSConfig{
		Skipper:       func(c echo.Context) bool { return websocketPath(c.Request().URL.Path) },
		AllowMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType},
		ExposeHeaders: []string{"Retry-After"},
		MaxAge:        3600,
	}
	if allowed.any() {
		cors.AllowOrigins = []string{"*"}
	} else {
		cors.AllowOriginFunc = func(origin string) (bool, error) { return allowed.match(origin), nil }
	}
	s.echo.Use(middleware.CORSWithConfig(cors))
}
