package transport

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultReadTimeout is the default Config.ReadTimeout.
const DefaultReadTimeout = 30 * time.Second

// bodyDeadline gives a request body cfg.ReadTimeout to arrive whole: a
// client that stalls mid-body gets 408 and its connection closed. The
// deadline is lifted as soon as the body has been read, so that the
// handler's own wait (the store, a long-poll) is not cut by it.
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || s.cfg.ReadTimeout < 0 {
			return next(c)
		}
		rc := http.NewResponseController(c.Response())
		if err := rc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout)); err != nil {
			return next(c) // not a connection that has deadlines (a test recorder)
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: s.cfg.ReadTimeout}
		return next(c)
	}
}

// deadlineBody lifts the read deadline when the body ends and turns the
// deadline's error into a 408.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, echo.NewHTTPError(http.StatusRequestTimeout,
				"body: not received whole within the read timeout ("+b.timeout.String()+", --read-timeout)")
		}
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
