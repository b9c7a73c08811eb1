package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge/edgepb"
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
		// A probe's 503 is its answer (draining, core unreachable), not a
		// failure to log at every poll of a load balancer.
		if code >= 500 && !isProbe(c.Path()) {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", code, "err", err)
		}
		if code == http.StatusTooManyRequests && c.Response().Header().Get("Retry-After") == "" {
			// Every 429 says when to come back; refusals without a
			// known wait (a busy RedisQ queue) ask for a second.
			c.Response().Header().Set("Retry-After", "1")
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// errorRule is one row of the error table: how one sentinel error is
// answered over HTTP and carried between a core and its edges.
type errorRule struct {
	// err is the sentinel, matched with errors.Is.
	err error
	// status is the HTTP status of an answer failed by err.
	status int
	// code is err's code on the edge protocol; each code names one rule.
	code edgepb.Code
	// text is the answer's "error"; "" means prefix + the error's text.
	text   string
	prefix string
	// edge, when set, is the error an edge returns for code instead of
	// err: the core going away is, to an edge's clients, the store being
	// unavailable, not the edge stopping.
	edge error
	// httpOnly rules never cross the wire (the edge protocol carries them
	// as CODE_INTERNAL).
	httpOnly bool
}

// unavailableText is the answer of every store that did not answer in time.
const unavailableText = "store unavailable: no answer within the request timeout"

// errorTable is the one place that maps each sentinel error to its HTTP
// status and its wire code; statusOf, WireFailure and FailureError read
// it. The first rule that matches wins.
var errorTable = []errorRule{
	{err: eventlog.ErrTooManyClients, status: http.StatusTooManyRequests, code: edgepb.Code_CODE_TOO_MANY_CLIENTS,
		text: "client_id: the server holds its most clients; new client ids are refused for now (existing ones keep working)"},
	{err: eventlog.ErrNotOwner, status: http.StatusForbidden, code: edgepb.Code_CODE_NOT_OWNER,
		text: "client_id: bound to another read key"},
	{err: killmail.ErrTooLarge, status: http.StatusRequestEntityTooLarge, code: edgepb.Code_CODE_TOO_LARGE, prefix: "body: "},
	{err: killmail.ErrInvalidJSON, status: http.StatusBadRequest, code: edgepb.Code_CODE_BAD_KILLMAIL, prefix: "body: "},
	{err: killmail.ErrNotObject, status: http.StatusBadRequest, code: edgepb.Code_CODE_NOT_OBJECT, prefix: "body: "},
	{err: killmail.ErrNoID, status: http.StatusBadRequest, code: edgepb.Code_CODE_NO_ID, prefix: "body: "},
	{err: killmail.ErrNoSystem, status: http.StatusBadRequest, code: edgepb.Code_CODE_NO_SYSTEM, prefix: "body: "},
	{err: killmail.ErrInvalidUTF8, status: http.StatusBadRequest, code: edgepb.Code_CODE_INVALID_UTF8, prefix: "body: "},
	{err: killmail.ErrTooDeep, status: http.StatusBadRequest, code: edgepb.Code_CODE_TOO_DEEP, prefix: "body: "},
	{err: actors.ErrUnavailable, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_UNAVAILABLE,
		text: unavailableText, edge: actors.ErrUnavailable},
	{err: actor.ErrTimeout, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_UNAVAILABLE, text: unavailableText},
	{err: actor.ErrDeadLetter, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_UNAVAILABLE, text: unavailableText},
	{err: context.DeadlineExceeded, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_UNAVAILABLE, text: unavailableText},
	{err: actors.ErrCrashed, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_CRASHED},
	{err: eventlog.ErrWrite, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_WRITE},
	{err: eventlog.ErrClosed, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_CLOSED, edge: actors.ErrUnavailable},
	{err: actors.ErrStopped, status: http.StatusServiceUnavailable, code: edgepb.Code_CODE_STOPPED, edge: actors.ErrUnavailable},
	{err: context.Canceled, status: 499, text: "request canceled", httpOnly: true},
}

// ruleOf is the first rule matching err, or nil.
func ruleOf(err error) *errorRule {
	for i := range errorTable {
		if errors.Is(err, errorTable[i].err) {
			return &errorTable[i]
		}
	}
	return nil
}

// answer is the HTTP status and "error" text of err under r.
func (r *errorRule) answer(err error) (int, string) {
	if r.text != "" {
		return r.status, r.text
	}
	return r.status, r.prefix + err.Error()
}

// plainJSON is Echo's JSON serializer without HTML escaping: error texts
// quote what a client sent ("<" stays "<", not "\u003c").
type plainJSON struct{ echo.DefaultJSONSerializer }

func (plainJSON) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

// plainMarshal is json.Marshal without HTML escaping, for the websocket
// protocols' frames (their error texts quote what a client sent).
func plainMarshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the frames' types always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func statusOf(err error) (int, string) {
	var he *echo.HTTPError
	var maxBytes *http.MaxBytesError
	var le *limitError
	var pe *selection.ParamError
	var kpe *killmail.PathError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error()
	case errors.As(err, &kpe):
		return http.StatusBadRequest, "body" + kpe.Path + ": " + kpe.Err.Error()
	case errors.As(err, &le):
		return le.code, le.Error()
	case errors.As(err, &he):
		msg, ok := he.Message.(string)
		if !ok {
			msg = http.StatusText(he.Code)
		}
		return he.Code, msg
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, "body: larger than the limit"
	}
	if r := ruleOf(err); r != nil {
		return r.answer(err)
	}
	return http.StatusInternalServerError, "internal error"
}

// WireFailure encodes err for the edge protocol by the error table; nil
// for nil. An error of no rule crosses as CODE_INTERNAL.
func WireFailure(err error) *edgepb.Failure {
	if err == nil {
		return nil
	}
	code := edgepb.Code_CODE_INTERNAL
	if r := ruleOf(err); r != nil && !r.httpOnly {
		code = r.code
	}
	return &edgepb.Failure{Code: code, Message: err.Error()}
}

// FailureError decodes a wire failure back to the error the core
// returned: it matches the same sentinel (errors.Is) and reads as the
// core's text, so that an edge answers as the core would. nil for nil.
func FailureError(f *edgepb.Failure) error {
	if f == nil {
		return nil
	}
	for i := range errorTable {
		r := &errorTable[i]
		if r.httpOnly || r.code != f.GetCode() {
			continue
		}
		if r.edge != nil {
			return r.edge
		}
		return &remoteError{sentinel: r.err, msg: f.GetMessage()}
	}
	return &remoteError{msg: f.GetMessage()}
}

// remoteError is an error the core returned, as an edge sees it.
type remoteError struct {
	sentinel error // nil for an error of no rule
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
