package transport

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/killmail"
)

// bearer is the token of r's Authorization header; the scheme is
// case-insensitive (RFC 9110, 11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// requireToken checks the bearer token when one is configured; without
// one, ingest is open to loopback clients only (the client address as
// resolved through the trusted proxies), so that a port reachable from
// elsewhere does not let anyone inject killmails.
func (s *Server) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.IngestToken == "" {
		return func(c echo.Context) error {
			if a := s.limits.resolvedAddr(c.Request()); !a.IsLoopback() {
				from := "an unknown address"
				if a.IsValid() {
					from = a.String()
				}
				return echo.NewHTTPError(http.StatusForbidden, "Authorization: ingest without --ingest-token is open to loopback clients only, and this request comes from "+
					from+"; start killfeed with --ingest-token and send Authorization: Bearer <token>")
			}
			return next(c)
		}
	}
	want := []byte(s.cfg.IngestToken)
	return func(c echo.Context) error {
		got, ok := bearer(c.Request())
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="killfeed"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "Authorization: a valid Bearer token is required")
		}
		return next(c)
	}
}

type insertAnswer struct {
	EventID   uint64 `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

// ingest serves POST /api/killmails.
func (s *Server) ingest(c echo.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				"body: larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		}
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he // the read timeout
		}
		return badParam("body", "could not be read")
	}
	kms, array, err := killmail.ParseMany(body)
	if err != nil {
		var el *killmail.ElementError
		if errors.As(err, &el) {
			code, msg := statusOf(el.Err)
			return echo.NewHTTPError(code, "body["+strconv.Itoa(el.Index)+"]"+strings.TrimPrefix(msg, "body")+"; nothing was stored")
		}
		return err
	}
	ctx, cancel := s.requestContext(c, 0)
	defer cancel()
	res, err := s.svc.Insert(actors.WithSource(ctx, ingestSource(c.Request())), kms, nil)
	if err != nil {
		return err
	}
	answers := make([]insertAnswer, len(res))
	for i, r := range res {
		answers[i] = insertAnswer{EventID: r.EventID, Duplicate: r.Duplicate}
	}
	if array {
		return c.JSON(http.StatusCreated, answers)
	}
	if answers[0].Duplicate {
		return c.JSON(http.StatusOK, answers[0])
	}
	return c.JSON(http.StatusCreated, answers[0])
}
