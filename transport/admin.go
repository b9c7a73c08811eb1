package transport

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
)

// adminRoutes serves GET /api/webhooks when an admin token is configured.
func (s *Server) adminRoutes() {
	if s.cfg.AdminToken == "" {
		return
	}
	s.echo.GET("/api/webhooks", s.webhooks, s.requireAdmin)
}

// requireAdmin refuses a request without the admin bearer token (the
// scheme's case does not matter), comparing in constant time.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return func(c echo.Context) error {
		tok, _ := bearer(c.Request())
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="killfeed admin"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "authorization: the admin token is required (Authorization: Bearer <token>)")
		}
		return next(c)
	}
}

// webhooks answers {"webhooks":[…]}: each webhook's name, state,
// position, lag and last error.
func (s *Server) webhooks(c echo.Context) error {
	var list any = []struct{}{}
	if s.cfg.Webhooks != nil {
		list = s.cfg.Webhooks()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"webhooks": list})
}
