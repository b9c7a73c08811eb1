package names

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/killfeed/killfeed/metrics"
)

// Defaults of ClientConfig.
const (
	DefaultESIURL     = "https://esi.evetech.net"
	DefaultTimeout    = 10 * time.Second
	DefaultConcurrent = 8
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 2 * time.Minute
	// MaxNamesPerCall is the most ids ESI takes in one POST /universe/names/.
	MaxNamesPerCall = 1000
	// errorLimitFloor is the X-ESI-Error-Limit-Remain below which requests
	// pause until X-ESI-Error-Limit-Reset has passed.
	errorLimitFloor = 10
	// maxPause bounds any pause a header asks for.
	maxPause = 10 * time.Minute
	maxBody  = 4 << 20
)

// UserAgent is the User-Agent of every ESI request, followed by the
// operator's contact when one is configured.
const UserAgent = "killfeed (+https://github.com/killfeed/killfeed)"

// ClientConfig configures the ESI client. The zero value means the defaults.
type ClientConfig struct {
	// URL is ESI's base URL, without a trailing slash; "" means DefaultESIURL.
	URL string
	// Contact (an e-mail address or an in-game name) goes into the
	// User-Agent, so that ESI's operators can reach whoever runs this
	// instance; "" sends the project's address alone.
	Contact string
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrent bounds the requests in flight; 0 means DefaultConcurrent.
	Concurrent int
	// BackoffMin and BackoffMax bound the pause after a 5xx or a network
	// error (doubling per consecutive fault, with jitter); 0 means
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// HTTP is the HTTP client; nil means a client of its own.
	HTTP *http.Client
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts requests by endpoint and outcome; nil counts nowhere.
	Metrics *metrics.Names
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.URL == "" {
		c.URL = DefaultESIURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Concurrent <= 0 {
		c.Concurrent = DefaultConcurrent
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.HTTP == nil {
		c.HTTP = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: c.Concurrent,
			IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true,
		}}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Entity is a character, corporation or alliance as ESI names it.
type Entity struct {
	ID int64
	// Category is "character", "corporation", "alliance" (or another of
	// /universe/names/'s categories).
	Category string
	Name     string
	// Ticker is set for corporations and alliances.
	Ticker string
}

// Client calls ESI's name endpoints. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	ua   string
	sem  chan struct{}
	mu   sync.Mutex
	till time.Time // no request before this
	why  string    // what the pause is for, for the logs
	n    int       // consecutive faults
}

// NewClient returns a client.
func NewClient(cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	ua := UserAgent
	if c := strings.TrimSpace(cfg.Contact); c != "" {
		ua = "killfeed (+https://github.com/killfeed/killfeed; " + c + ")"
	}
	return &Client{cfg: cfg, ua: ua, sem: make(chan struct{}, cfg.Concurrent)}
}

// statusError is a non-200 answer that is not a fault of ESI's.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return "esi: status " + strconv.Itoa(e.code) + ": " + e.body
}

func isStatus(err error, codes ...int) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.code == c {
			return true
		}
	}
	return false
}

// Names resolves ids with POST /universe/names/, MaxNamesPerCall a call.
// ESI refuses a whole call when one id is unknown to it: the call is then
// split in halves until the unknown ids are alone, and those come back in
// unknown.
func (c *Client) Names(ctx context.Context, ids []int64) (found []Entity, unknown []int64, err error) {
	for len(ids) > 0 {
		n := min(len(ids), MaxNamesPerCall)
		f, u, err := c.names(ctx, ids[:n])
		found, unknown = append(found, f...), append(unknown, u...)
		if err != nil {
			return found, unknown, err
		}
		ids = ids[n:]
	}
	return found, unknown, nil
}

func (c *Client) names(ctx context.Context, ids []int64) ([]Entity, []int64, error) {
	body, err := json.Marshal(ids)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.do(ctx, metrics.ESINames, http.MethodPost, "/universe/names/", body)
	switch {
	case isStatus(err, http.StatusNotFound, http.StatusBadRequest):
		if len(ids) == 1 {
			return nil, ids, nil
		}
		half := len(ids) / 2
		f1, u1, err := c.names(ctx, ids[:half])
		if err != nil {
			return f1, u1, err
		}
		f2, u2, err := c.names(ctx, ids[half:])
		return append(f1, f2...), append(u1, u2...), err
	case err != nil:
		return nil, nil, err
	}
	var got []struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		Category string `json:"category"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		c.cfg.Metrics.ESI(metrics.ESINames, metrics.OutcomeMalformed)
		return nil, nil, fmt.Errorf("%w: /universe/names/: %v", ErrUnexpected, err)
	}
	asked := make(map[int64]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	out := make([]Entity, 0, len(got))
	for _, g := range got {
		if asked[g.ID] && g.Name != "" {
			out = append(out, Entity{ID: g.ID, Category: g.Category, Name: g.Name})
			delete(asked, g.ID)
		}
	}
	var unknown []int64
	for _, id := range ids {
		if asked[id] {
			unknown = append(unknown, id) // a 200 that left it out
		}
	}
	return out, unknown, nil
}

// Corporation reads GET /corporations/{id}/: its name and ticker. ok is
// false when ESI does not know the id.
func (c *Client) Corporation(ctx context.Context, id int64) (Entity, bool, error) {
	return c.entity(ctx, metrics.ESICorporations, "corporation", "/corporations/", id)
}

// Alliance reads GET /alliances/{id}/: its name and ticker. ok is false
// when ESI does not know the id.
func (c *Client) Alliance(ctx context.Context, id int64) (Entity, bool, error) {
	return c.entity(ctx, metrics.ESIAlliances, "alliance", "/alliances/", id)
}

func (c *Client) entity(ctx context.Context, endpoint, category, path string, id int64) (Entity, bool, error) {
	b, err := c.do(ctx, endpoint, http.MethodGet, path+strconv.FormatInt(id, 10)+"/", nil)
	switch {
	case isStatus(err, http.StatusNotFound, http.StatusBadRequest):
		return Entity{}, false, nil
	case err != nil:
		return Entity{}, false, err
	}
	var got struct {
		Name   string `json:"name"`
		Ticker string `json:"ticker"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Name == "" {
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeMalformed)
		return Entity{}, false, fmt.Errorf("%w: %s%d/: %v", ErrUnexpected, path, id, err)
	}
	return Entity{ID: id, Category: category, Name: got.Name, Ticker: got.Ticker}, true, nil
}

// BackingOff says until when requests are paused (zero when they are not).
func (c *Client) BackingOff() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.till) {
		return c.till
	}
	return time.Time{}
}

// do makes one request. While a pause runs it fails at once with
// ErrBackingOff. A 200 returns the body; 400 and 404 are a *statusError;
// 420, 429, 5xx and network errors pause later requests and are errors.
func (c *Client) do(ctx context.Context, endpoint, method, path string, body []byte) ([]byte, error) {
	if until := c.BackingOff(); !until.IsZero() {
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeBackingOff)
		return nil, fmt.Errorf("%w until %s", ErrBackingOff, until.Format(time.RFC3339))
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeError)
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.fault(err.Error(), 0)
		}
		return nil, err
	}
	defer resp.Body.Close()
	c.errorLimit(resp.Header)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeError)
		c.fault(err.Error(), 0)
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	snippet := strings.TrimSpace(string(b[:min(len(b), 200)]))
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeOK)
		c.ok()
		return b, nil
	case code == 420: // ESI's "error limited"
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeRateLimited)
		c.pause("error limited (420)", headerSeconds(resp.Header, "X-ESI-Error-Limit-Reset", time.Minute))
		return nil, &statusError{code: code, body: snippet}
	case code == http.StatusTooManyRequests:
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeRateLimited)
		c.pause("rate limited (429)", headerSeconds(resp.Header, "Retry-After", time.Minute))
		return nil, &statusError{code: code, body: snippet}
	case code >= 500:
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeServerError)
		c.fault("status "+strconv.Itoa(code), headerSeconds(resp.Header, "Retry-After", 0))
		return nil, &statusError{code: code, body: snippet}
	case code == http.StatusNotFound:
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeGap)
		return nil, &statusError{code: code, body: snippet}
	default:
		c.cfg.Metrics.ESI(endpoint, metrics.OutcomeClientError)
		return nil, &statusError{code: code, body: snippet}
	}
}

// headerSeconds reads a header holding seconds; def when absent or bad.
func headerSeconds(h http.Header, name string, def time.Duration) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	if err != nil || s < 0 {
		return def
	}
	return min(time.Duration(s)*time.Second, maxPause)
}

// errorLimit pauses requests when ESI says few errors remain in its window.
func (c *Client) errorLimit(h http.Header) {
	remain, err := strconv.Atoi(h.Get("X-ESI-Error-Limit-Remain"))
	if err != nil || remain >= errorLimitFloor {
		return
	}
	c.pause("error limit nearly reached ("+strconv.Itoa(remain)+" left)", headerSeconds(h, "X-ESI-Error-Limit-Reset", time.Minute))
}

// fault records a 5xx or network error: later requests pause for the
// next backoff step (or retryAfter when ESI gave one). Requests that were
// in flight when a pause began fail together: they count as one step.
func (c *Client) fault(why string, retryAfter time.Duration) {
	c.mu.Lock()
	if time.Now().Before(c.till) {
		c.mu.Unlock()
		return
	}
	d := c.cfg.BackoffMin
	for i := 0; i < c.n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	d = d/2 + rand.N(d-d/2+1)
	c.n++
	c.mu.Unlock()
	c.pause(why, max(d, retryAfter))
}

func (c *Client) ok() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.cfg.Logger.Info("esi names: recovered", "after_faults", c.n)
	}
	c.n = 0
}

func (c *Client) pause(why string, d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until := time.Now().Add(d)
	if until.After(c.till) {
		if !time.Now().Before(c.till) {
			c.cfg.Logger.Warn("esi names: pausing requests", "why", why, "for", d.Round(time.Millisecond))
		}
		c.till, c.why = until, why
	}
}
