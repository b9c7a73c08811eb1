package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// badParam is a 400 naming the parameter at fault.
func badParam(name, problem string) error {
	return echo.NewHTTPError(http.StatusBadRequest, name+": "+problem)
}

// errorHandler answers every error with its status and {"error": "…"}.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := statusOf(err)
		if code >= 500 {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", code, "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

func statusOf(err error) (int, string) {
	var he *echo.HTTPError
	var maxBytes *http.MaxBytesError
	var le *limitError
	var pe *selection.ParamError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error()
	case errors.As(err, &le):
		return le.code, le.Error()
	case errors.Is(err, eventlog.ErrTooManyClients):
		return http.StatusTooManyRequests, "client_id: the server holds its most clients; new client ids are refused for now (existing ones keep working)"
	case errors.Is(err, eventlog.ErrNotOwner):
		return http.StatusForbidden, "client_id: bound to another read key"

	case errors.As(err, &he):
		msg, ok := he.Message.(string)
		if !ok {
			msg = http.StatusText(he.Code)
		}
		return he.Code, msg
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, "body: larger than the limit"
	case errors.Is(err, killmail.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "body: " + err.Error()
	case errors.Is(err, killmail.ErrInvalidJSON), errors.Is(err, killmail.ErrNotObject),
		errors.Is(err, killmail.ErrNoID), errors.Is(err, killmail.ErrNoSystem):
		return http.StatusBadRequest, "body: " + err.Error()
	case errors.Is(err, actors.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "store unavailable: no answer within the request timeout"
	case errors.Is(err, actors.ErrCrashed), errors.Is(err, eventlog.ErrWrite),
		errors.Is(err, eventlog.ErrClosed), errors.Is(err, actors.ErrStopped):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request canceled"
	}
	return http.StatusInternalServerError, "internal error"
}
