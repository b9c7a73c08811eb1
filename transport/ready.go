package transport

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
)

// readyTimeout bounds how long GET /readyz waits for the store actor: a
// store that takes longer is not ready to serve requests.
const readyTimeout = time.Second

// ready serves GET /readyz: 200 {"status":"ready"} when the service takes
// traffic, else 503 {"error": reason}: while draining for a shutdown, when
// the store actor does not answer a request within readyTimeout (or the
// request timeout, when shorter), or when cfg.Ready reports a problem.
// /healthz stays the liveness probe.
func (s *Server) ready(c echo.Context) error {
	select {
	case <-s.draining:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "draining: shutting down")
	default:
	}
	if s.unready.Load() {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "draining: shutting down")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), min(readyTimeout, s.cfg.RequestTimeout))
	defer cancel()
	if _, err := s.svc.Fetch(ctx, &actors.FetchSince{}); err != nil {
		if errors.Is(err, actors.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "store: did not answer within "+min(readyTimeout, s.cfg.RequestTimeout).String())
		}
		return echo.NewHTTPError(http.StatusServiceUnavailable, "store: "+err.Error())
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// Unready makes GET /readyz answer 503 from now on while everything else
// is served as before, so that a load balancer stops sending new traffic
// before the listener closes (the drain grace of a shutdown).
func (s *Server) Unready() { s.unready.Store(true) }
