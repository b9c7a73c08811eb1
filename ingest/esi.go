package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/names"
)

// Defaults of ESIConfig.
const (
	DefaultESIURL     = names.DefaultESIURL // one ESI for killmails and names
	DefaultESITimeout = 10 * time.Second
	// esiErrorLimitFloor is the X-ESI-Error-Limit-Remain below which
	// requests pause until X-ESI-Error-Limit-Reset has passed.
	esiErrorLimitFloor = 10
)

// ESIConfig configures the ESI killmail fetcher. The zero value means the
// defaults.
type ESIConfig struct {
	// URL is ESI's base URL; "" means DefaultESIURL.
	URL string
	// Timeout bounds one request; 0 means DefaultESITimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a fault; 0 means
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Client is the HTTP client; nil means a client of its own.
	Client *http.Client
	// Logger receives the fetcher's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts ESI requests by outcome; nil counts nowhere.
	Metrics *metrics.Upstream
}

func (c ESIConfig) withDefaults() ESIConfig {
	if c.URL == "" {
		c.URL = DefaultESIURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Timeout <= 0 {
		c.Timeout = DefaultESITimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports invalid fields by their flag names.
func (c ESIConfig) Validate() error {
	var errs []error
	if c.URL != "" {
		if err := validURL(c.URL); err != nil {
			errs = append(errs, configError("esi-url", "%v", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, configError("esi-timeout", "must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// ESI fetches killmails from EVE's ESI by id and hash, honouring its error
// limit: when X-ESI-Error-Limit-Remain drops below 10, requests pause until
// X-ESI-Error-Limit-Reset seconds have passed.
type ESI struct {
	cfg      ESIConfig
	client   *http.Client
	faults   *streak
	requests metrics.Outcome

	mu          sync.Mutex
	pausedUntil time.Time
}

// NewESI returns a fetcher.
func NewESI(cfg ESIConfig) (*ESI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &ESI{cfg: cfg, client: newClient(cfg.Client),
		faults:   newStreak(cfg.Logger, "esi", cfg.BackoffMin, cfg.BackoffMax),
		requests: cfg.Metrics.Requests(metrics.UpstreamESI)}, nil
}

// Killmail fetches GET {url}/killmails/{id}/{hash}/ and returns the ESI
// object with zkb added. Faults are retried until ctx is done; an answer
// that says the killmail does not exist (400, 404, 422) or a body that is
// not a killmail is ErrBadInput.
func (e *ESI) Killmail(ctx context.Context, id int64, hash string, zkb []byte) (killmail.Killmail, error) {
	url := e.cfg.URL + "/killmails/" + strconv.FormatInt(id, 10) + "/" + hash + "/"
	for {
		if !pause.For(ctx, e.pause()) {
			return killmail.Killmail{}, ctx.Err()
		}
		body, hdr, err := get(ctx, e.client, url, e.cfg.Timeout)
		e.limit(hdr)
		if ctx.Err() != nil {
			return killmail.Killmail{}, ctx.Err()
		}
		outcome := outcomeOf(err)
		switch code := statusOf(err); {
		case err == nil:
			e.faults.ok()
			km, err := killmail.FromESI(body, zkb)
			if err != nil {
				e.requests.Add(metrics.OutcomeMalformed)
				return killmail.Killmail{}, fmt.Errorf("%w: ESI killmail %d: %v", ErrBadInput, id, err)
			}
			if km.ID != id {
				e.requests.Add(metrics.OutcomeMalformed)
				return killmail.Killmail{}, fmt.Errorf("%w: ESI killmail %d: killmail_id: the answer is killmail %d", ErrBadInput, id, km.ID)
			}
			e.requests.Add(outcome)
			return km, nil
		case code == http.StatusBadRequest, code == http.StatusNotFound, code == http.StatusUnprocessableEntity,
			errors.Is(err, ErrBadInput):
			e.faults.ok()
			e.requests.Add(outcome)
			return killmail.Killmail{}, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		e.requests.Add(outcome)
		wait := e.faults.fail(err, retryAfterOf(err))
		if !pause.For(ctx, wait) {
			return killmail.Killmail{}, ctx.Err()
		}
	}
}

// limit reads ESI's error-limit headers and pauses when few errors remain.
func (e *ESI) limit(hdr http.Header) {
	if hdr == nil {
		return
	}
	remain, err := strconv.Atoi(hdr.Get("X-ESI-Error-Limit-Remain"))
	if err != nil || remain >= esiErrorLimitFloor {
		return
	}
	reset, err := strconv.Atoi(hdr.Get("X-ESI-Error-Limit-Reset"))
	if err != nil || reset < 0 {
		reset = 60 // ESI's error window
	}
	d := min(time.Duration(reset)*time.Second, maxRetryAfter)
	e.mu.Lock()
	defer e.mu.Unlock()
	until := time.Now().Add(d)
	if until.After(e.pausedUntil) {
		e.cfg.Logger.Warn("esi error limit nearly reached; pausing", "remain", remain, "for", d)
		e.pausedUntil = until
	}
}

func (e *ESI) pause() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Until(e.pausedUntil)
}
