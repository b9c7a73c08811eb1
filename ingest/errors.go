package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrConfig is wrapped by every invalid configuration error.
	ErrConfig = errors.New("invalid ingest config")
	// ErrBadInput marks upstream data that can never be stored: invalid
	// JSON, missing ESI fields, a body over the size limit.
	ErrBadInput = errors.New("bad upstream data")
	// ErrNotFound is an upstream 404.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is a 401 or 403 from a killfeed instance.
	ErrUnauthorized = errors.New("unauthorized")
)

// StatusError is an unexpected HTTP status from an upstream.
type StatusError struct {
	// Method is the request's method; "" means GET.
	Method string
	URL    string
	Code   int
	// RetryAfter is the parsed Retry-After header; 0 when absent.
	RetryAfter time.Duration
	// Body is the start of the response body, for the log.
	Body string
}

func (e *StatusError) Error() string {
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	s := fmt.Sprintf("%s %s: %d %s", method, e.URL, e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Is makes a 404 match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Code == http.StatusNotFound
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}
