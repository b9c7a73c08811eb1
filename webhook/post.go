package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxAnswerBytes bounds how much of an answer is read.
const maxAnswerBytes = 64 << 10

// answer is what one POST came to.
type answer struct {
	// err is nil for a 2xx, else ErrRateLimited, ErrRejected or
	// ErrUnavailable wrapped with the reason.
	err error
	// status is the HTTP status (0: none).
	status int
	// retryAfter is how long a 429 asks to wait (0: not said).
	retryAfter time.Duration
	// resetAfter is how long the endpoint's rate-limit bucket needs before
	// the next request, when X-RateLimit-Remaining said 0 (0: none).
	resetAfter time.Duration
}

// post sends body to u and reads the answer.
func post(ctx context.Context, client *http.Client, u string, body []byte, header http.Header) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return answer{err: fmt.Errorf("%w: %v", ErrRejected, err)}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: fmt.Errorf("%w: %v", ErrUnavailable, redactURL(err, u))}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes)) // let the connection be reused
	a := answer{status: resp.StatusCode, resetAfter: resetAfter(resp.Header)}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
	case s == http.StatusTooManyRequests:
		a.retryAfter = retryAfter(resp.Header, msg)
		a.err = fmt.Errorf("%w: %s", ErrRateLimited, statusText(s, msg))
	case s >= 500:
		a.err = fmt.Errorf("%w: %s", ErrUnavailable, statusText(s, msg))
	case s == http.StatusRequestTimeout:
		a.err = fmt.Errorf("%w: %s", ErrUnavailable, statusText(s, msg))
	default: // 1xx, 3xx (redirects are not followed), 4xx
		a.err = fmt.Errorf("%w: %s", ErrRejected, statusText(s, msg))
	}
	return a
}

// redactURL keeps a URL (which holds a Discord webhook's token) out of an
// error.
func redactURL(err error, u string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), u, "<url>"))
}

// statusText is "404 Not Found: <the start of the body>".
func statusText(status int, body []byte) string {
	s := strconv.Itoa(status) + " " + http.StatusText(status)
	b := strings.TrimSpace(strings.ToValidUTF8(string(body), ""))
	if b == "" {
		return s
	}
	if r := []rune(b); len(r) > 200 {
		b = string(r[:200]) + "…"
	}
	return s + ": " + b
}

// retryAfter reads how long a 429 asks to wait: Discord's retry_after
// (seconds, fractional) in a JSON body, else the Retry-After header
// (seconds, or an HTTP date). 0 when neither says.
func retryAfter(h http.Header, body []byte) time.Duration {
	var d struct {
		RetryAfter *float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &d) == nil && d.RetryAfter != nil && *d.RetryAfter > 0 {
		return seconds(*d.RetryAfter)
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return seconds(s)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxWait)
	}
	return 0
}

// resetAfter is X-RateLimit-Reset-After when X-RateLimit-Remaining is 0:
// the bucket is empty until then.
func resetAfter(h http.Header) time.Duration {
	if strings.TrimSpace(h.Get("X-RateLimit-Remaining")) != "0" {
		return 0
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-Reset-After")), 64)
	if err != nil {
		return 0
	}
	return seconds(s)
}

// maxWait caps a wait an endpoint asks for, so that a bogus header cannot
// park a webhook for years.
const maxWait = time.Hour

func seconds(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	if s > maxWait.Seconds() {
		return maxWait
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// gates hold, per URL, the time before which no request may be sent to
// it, and let one request at a time go to it: webhooks that share an
// endpoint share its rate limit, and each request learns from the answer
// to the one before it.
type gates struct {
	mu sync.Mutex
	at map[string]*gate
}

type gate struct {
	turn      chan struct{} // holds a token while a request is in flight
	mu        sync.Mutex
	notBefore time.Time
	users     int
}

// enter waits for the URL's turn; false when ctx ended first.
func (x *gate) enter(ctx context.Context) bool {
	select {
	case x.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// leave ends the turn enter took.
func (x *gate) leave() { <-x.turn }

func (g *gates) take(u string) *gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.at == nil {
		g.at = make(map[string]*gate)
	}
	x := g.at[u]
	if x == nil {
		x = &gate{turn: make(chan struct{}, 1)}
		g.at[u] = x
	}
	x.users++
	return x
}

func (g *gates) release(u string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if x := g.at[u]; x != nil {
		if x.users--; x.users == 0 {
			delete(g.at, u)
		}
	}
}

// holdUntil moves the gate's time forward to t.
func (x *gate) holdUntil(t time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t.After(x.notBefore) {
		x.notBefore = t
	}
}

func (x *gate) opensAt() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.notBefore
}
