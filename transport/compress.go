package transport

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"

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

// selfCompressed reports whether path is a route whose answer compresses
// itself (deliver): the polls and RedisQ, which flush their answer to learn
// that it was written.
func selfCompressed(path string) bool {
	switch path {
	case "/api/killfeed", "/api/killfeed/next", "/listen.php", "/api/redisq/listen.php":
		return true
	}
	return false
}

// gzipWriters are the writers gzipped reuses.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// gzipped is body compressed with gzip.
func gzipped(body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body)/3 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&b)
	_, _ = zw.Write(body) // a bytes.Buffer does not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	return b.Bytes()
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
			return websocketPath(p) || selfCompressed(p) || p == "/" || strings.HasPrefix(p, "/ui/") || p == "/api/universe" || p == "/metrics"
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
