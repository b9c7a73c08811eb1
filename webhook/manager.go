package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/universe"
)

// Defaults for a zero Config.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultBackoffMin    = time.Second
	DefaultBackoffMax    = 5 * time.Minute
	DefaultMaxRejections = 3
	DefaultBatchSize     = 100
	DefaultIdleCheck     = 30 * time.Second
)

// Config tunes delivery. The zero value means the defaults.
type Config struct {
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
	// BackoffMin is the first wait after a failed attempt, doubled after
	// each failure up to BackoffMax; 0 means the defaults.
	BackoffMin, BackoffMax time.Duration
	// MaxRejections is how many times a request answered with a 4xx other
	// than 429 is retried before the webhook is marked failed; 0 means
	// DefaultMaxRejections, negative means none.
	MaxRejections int
	// BatchSize is how many events one read of the log takes; 0 means
	// DefaultBatchSize.
	BatchSize int
	// IdleCheck is how often a caught-up webhook looks at the log even
	// without being told of a new event; 0 means DefaultIdleCheck.
	IdleCheck time.Duration
	// Client sends the requests; nil means one with no redirects followed.
	Client *http.Client
	// Enrich gives an event's killmail as delivered (with names); nil
	// means the stored killmail.
	Enrich func(ctx context.Context, ev eventlog.Event) []byte
	// Universe supplies system and region names a killmail lacks; nil
	// means universe.Default().
	Universe *universe.Universe
	// UserAgent is sent with every request; "" means "killfeed-webhook".
	UserAgent string
	// Logger receives the log lines; nil discards them.
	Logger *slog.Logger
	// Registry receives the webhook metrics; nil exports none.
	Registry *prometheus.Registry
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	switch {
	case c.MaxRejections == 0:
		c.MaxRejections = DefaultMaxRejections
	case c.MaxRejections < 0:
		c.MaxRejections = 0
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.IdleCheck <= 0 {
		c.IdleCheck = DefaultIdleCheck
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Universe == nil {
		c.Universe = universe.Default()
	}
	if c.UserAgent == "" {
		c.UserAgent = "killfeed-webhook"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Status is what GET /api/webhooks says of a webhook; the URL is
// redacted to its scheme and host, the secret never shown.
type Status struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	URL    string `json:"url"`
	Signed bool   `json:"signed"`
	State  string `json:"state"`
	// Position is the event id through which the webhook has delivered
	// (or skipped) everything.
	Position uint64 `json:"position"`
	// Lag is how many events were stored after Position.
	Lag         uint64    `json:"lag"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Manager runs the configured webhooks.
type Manager struct {
	src     Source
	cfg     Config
	client  *http.Client
	metrics *hookMetrics
	gates   gates

	mu      sync.Mutex
	runners map[string]*runner
	closed  bool
}

// NewManager returns a Manager reading src, with no webhook yet (see
// Apply).
func NewManager(src Source, cfg Config) *Manager {
	cfg = cfg.withDefaults()
	m := &Manager{src: src, cfg: cfg, client: cfg.Client, runners: make(map[string]*runner)}
	m.metrics = newMetrics(cfg.Registry, m)
	return m
}

// Apply makes hooks the running set: webhooks no longer listed stop (and
// their log clients expire like any idle client), new ones start at the
// next killmail stored, changed and failed ones start again where they
// stopped, and the others carry on undisturbed.
func (m *Manager) Apply(hooks []Webhook) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	keep := make(map[string]bool, len(hooks))
	for _, h := range hooks {
		keep[h.Name] = true
	}
	for name, r := range m.runners {
		if !keep[name] {
			m.stop(r)
			delete(m.runners, name)
			m.metrics.forget(name)
			if err := m.src.SetRetention(r.hook.ClientID(), eventlog.RetainIdle); err != nil {
				m.cfg.Logger.Warn("webhook: release retention", "webhook", name, "err", err)
			}
			m.cfg.Logger.Info("webhook removed", "webhook", name)
		}
	}
	for _, h := range hooks {
		if r := m.runners[h.Name]; r != nil {
			if r.hook.same(h) && !r.failed() {
				continue
			}
			m.stop(r)
		}
		m.runners[h.Name] = m.start(h)
		m.cfg.Logger.Info("webhook started", "webhook", h.Name, "format", h.Format, "url", redact(h.URL))
	}
}

func (m *Manager) start(h Webhook) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		hook: h, m: m, gate: m.gates.take(h.URL), logger: m.cfg.Logger, cancel: cancel, done: make(chan struct{}),
		status: Status{Name: h.Name, Format: h.Format, URL: redact(h.URL), Signed: h.Secret != "", State: StateStarting},
	}
	go r.run(ctx)
	return r
}

// stop ends a runner and waits for it: a request in flight is abandoned,
// and its events, not advanced past, are delivered again.
func (m *Manager) stop(r *runner) {
	r.cancel()
	<-r.done
	m.gates.release(r.hook.URL)
}

// Close stops every webhook and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for name, r := range m.runners {
		m.stop(r)
		delete(m.runners, name)
	}
}

// Status describes every webhook, by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	rs := make([]*runner, 0, len(m.runners))
	for _, r := range m.runners {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	head := m.src.Head()
	out := make([]Status, 0, len(rs))
	for _, r := range rs {
		s := r.snapshot()
		if head > s.Position {
			s.Lag = head - s.Position
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// backoff is the wait after the attempt-th failure in a row (from 0).
func (m *Manager) backoff(attempt int) time.Duration {
	d := m.cfg.BackoffMin
	for range min(attempt, 32) {
		if d *= 2; d >= m.cfg.BackoffMax {
			return m.cfg.BackoffMax
		}
	}
	return d
}

func (m *Manager) enrich(ctx context.Context, ev eventlog.Event) []byte {
	if m.cfg.Enrich == nil {
		return ev.Killmail
	}
	return m.cfg.Enrich(ctx, ev)
}

// redact keeps a URL's scheme and host: the path of a Discord webhook is
// its secret.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid>"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// jsonMarshal is json.Marshal without HTML escaping (Discord shows "<"
// as it is either way; the bodies stay readable).
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
