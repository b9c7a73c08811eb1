package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/names"
)

// Defaults of RedisQConfig.
const (
	DefaultRedisQTTW  = 10 * time.Second
	DefaultRedisQIdle = time.Second
)

// RedisQConfig configures a RedisQ-style poller. URL and Queue are
// required; for the rest the zero value means the default.
type RedisQConfig struct {
	// URL is the listen endpoint, e.g. https://example.org/listen.php.
	URL string
	// Queue is the queueID that names this consumer's queue upstream.
	Queue string
	// TTW is how long the upstream may hold a request open waiting for a
	// package (the ttw parameter, whole seconds); 0 means DefaultRedisQTTW.
	TTW time.Duration
	// Idle is how long to wait after a null package before asking again;
	// 0 means DefaultRedisQIdle.
	Idle time.Duration
	// Timeout bounds one request; 0 means TTW + 10s.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a fault; 0 means
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// ESI fetches killmails for packages that carry only killID and
	// zkb.hash.
	ESI ESIConfig
	// Client is the HTTP client; nil means a client of its own (which
	// follows redirects).
	Client *http.Client
	// Logger receives the poller's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts requests (to the upstream and to ESI) by outcome; nil
	// counts nowhere.
	Metrics *metrics.Upstream
	// Names, when set, looks up the names of each killmail as soon as it
	// arrives and stores killmails in order, each once its names are in or
	// the resolver's wait passed, while the next ones are fetched (as
	// R2Z2Config.Names). nil stores each as it comes.
	Names *names.Resolver
}

func (c RedisQConfig) withDefaults() RedisQConfig {
	if c.TTW <= 0 {
		c.TTW = DefaultRedisQTTW
	}
	if c.Idle <= 0 {
		c.Idle = DefaultRedisQIdle
	}
	if c.Timeout <= 0 {
		c.Timeout = c.TTW + 10*time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ESI.Logger == nil {
		c.ESI.Logger = c.Logger
	}
	if c.ESI.Client == nil {
		c.ESI.Client = c.Client
	}
	if c.ESI.BackoffMin == 0 {
		c.ESI.BackoffMin = c.BackoffMin
	}
	if c.ESI.BackoffMax == 0 {
		c.ESI.BackoffMax = c.BackoffMax
	}
	if c.ESI.Metrics == nil {
		c.ESI.Metrics = c.Metrics
	}
	return c
}

// Validate reports invalid fields by their flag names.
func (c RedisQConfig) Validate() error {
	var errs []error
	if err := validURL(c.URL); err != nil {
		errs = append(errs, configError("redisq-url", "%v", err))
	}
	if c.Queue == "" {
		errs = append(errs, configError("redisq-queue", "required with redisq-url"))
	}
	if c.TTW < 0 || c.Idle < 0 || c.Timeout < 0 {
		errs = append(errs, configError("redisq", "durations must not be negative"))
	}
	return errors.Join(append(errs, c.ESI.Validate())...)
}

// RedisQStats counts what a RedisQ poller did since it was created.
type RedisQStats struct {
	// Packages counts non-null packages received; Empty counts null ones.
	Packages, Empty int64
	// Fetched counts killmails fetched from ESI.
	Fetched int64
	// Inserted and Duplicates count stored killmails by outcome.
	Inserted, Duplicates int64
	// Skipped counts packages that could not be turned into a killmail.
	Skipped int64
	// Faults counts failed requests and inserts that were retried.
	Faults int64
}

// RedisQ polls a RedisQ-style endpoint: GET {url}?queueID=Q&ttw=N answers
// {"package": {...}} or {"package": null}. A package with its killmail is
// stored as is; one with only killID and zkb.hash is fetched from ESI first.
type RedisQ struct {
	cfg    RedisQConfig
	store  Store
	esi    *ESI
	client *http.Client
	url    string
	log    *slog.Logger

	storeCounts
	packages, empty, fetched, skipped atomic.Int64
	// pipe stores in order behind the names lookups (Config.Names); its
	// faults have a streak of their own. Set by Run.
	pipe        *ordered
	storeFaults *streak
}

// NewRedisQ returns a poller that stores into store. Run starts it.
func NewRedisQ(store Store, cfg RedisQConfig) (*RedisQ, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	esi, err := NewESI(cfg.ESI)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL) // validated
	q := u.Query()
	q.Set("queueID", cfg.Queue)
	q.Set("ttw", strconv.Itoa(max(1, int(cfg.TTW/time.Second))))
	u.RawQuery = q.Encode()
	return &RedisQ{cfg: cfg, store: store, esi: esi, client: newClient(cfg.Client),
		url: u.String(), log: cfg.Logger}, nil
}

// Stats returns the poller's counters.
func (p *RedisQ) Stats() RedisQStats {
	return RedisQStats{
		Packages: p.packages.Load(), Empty: p.empty.Load(), Fetched: p.fetched.Load(),
		Inserted: p.inserted.Load(), Duplicates: p.duplicates.Load(),
		Skipped: p.skipped.Load(), Faults: p.faults.Load(),
	}
}

// Run polls until ctx is done and then returns nil. Faults are retried,
// never returned.
func (p *RedisQ) Run(ctx context.Context) error {
	ctx = actors.WithSource(ctx, metrics.SourceRedisQ)
	requests := p.cfg.Metrics.Requests(metrics.UpstreamRedisQ)
	faults := newStreak(p.log, "redisq", p.cfg.BackoffMin, p.cfg.BackoffMax)
	p.log.Info("redisq polling", "url", p.cfg.URL, "queue", p.cfg.Queue)
	if p.cfg.Names != nil {
		ctx, cancel := context.WithCancel(ctx)
		p.pipe = startOrdered(ctx, p.cfg.Names)
		p.storeFaults = newStreak(p.log, "redisq store", p.cfg.BackoffMin, p.cfg.BackoffMax)
		defer p.pipe.wait()
		defer cancel()
	}
	for {
		body, _, err := get(ctx, p.client, p.url, p.cfg.Timeout)
		if ctx.Err() != nil {
			return nil
		}
		var pkg json.RawMessage
		if err == nil {
			if pkg, err = parseListen(body); err != nil {
				err = fmt.Errorf("GET %s: %w", p.cfg.URL, err)
			}
		}
		requests.Add(outcomeOf(err))
		if err == nil {
			faults.ok()
			if !p.handle(ctx, pkg, faults) {
				return nil
			}
			continue
		}
		p.faults.Add(1)
		if !pause.For(ctx, faults.fail(err, retryAfterOf(err))) {
			return nil
		}
	}
}

// parseListen reads a listen answer, {"package": …}, and returns the
// package (null or absent when there is none). A body that is not such an
// object is ErrBadInput.
func parseListen(body []byte) (json.RawMessage, error) {
	var doc struct {
		Package json.RawMessage `json:"package"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: listen answer: %v", ErrBadInput, err)
	}
	return doc.Package, nil
}

// handle stores one package; it reports false only when ctx is done.
func (p *RedisQ) handle(ctx context.Context, pkg json.RawMessage, faults *streak) bool {
	pkg = bytes.TrimSpace(pkg)
	if len(pkg) == 0 || bytes.Equal(pkg, []byte("null")) {
		p.empty.Add(1)
		return pause.For(ctx, p.cfg.Idle)
	}
	p.packages.Add(1)
	km, err := p.killmail(ctx, pkg)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		p.skipped.Add(1)
		p.log.Warn("redisq package skipped", "err", err)
		return true
	}
	kms, what := []killmail.Killmail{km}, fmt.Sprintf("killmail %d", km.ID)
	if p.pipe != nil {
		return p.pipe.add(ctx, kms, func(ctx context.Context) bool {
			return p.storeUntilDone(ctx, p.store, kms, nil, p.storeFaults, what)
		})
	}
	return p.storeUntilDone(ctx, p.store, kms, nil, faults, what)
}

// killmail turns a package into a killmail, fetching it from ESI when the
// package carries only killID and zkb.hash.
func (p *RedisQ) killmail(ctx context.Context, pkg []byte) (killmail.Killmail, error) {
	var env struct {
		KillID   json.Number     `json:"killID"`
		Killmail json.RawMessage `json:"killmail"`
		ZKB      json.RawMessage `json:"zkb"`
	}
	if err := json.Unmarshal(pkg, &env); err != nil {
		return killmail.Killmail{}, fmt.Errorf("%w: package: %v", ErrBadInput, err)
	}
	if k := bytes.TrimSpace(env.Killmail); len(k) > 0 && k[0] == '{' {
		km, err := killmail.Parse(pkg)
		if err != nil {
			return km, fmt.Errorf("%w: package %s: %v", ErrBadInput, env.KillID, err)
		}
		return km, nil
	}
	id, err := env.KillID.Int64()
	if err != nil || id <= 0 {
		return killmail.Killmail{}, fmt.Errorf("%w: package without killmail has no valid killID", ErrBadInput)
	}
	var zkb struct {
		Hash string `json:"hash"`
	}
	_ = json.Unmarshal(env.ZKB, &zkb)
	if !validHash(zkb.Hash) {
		return killmail.Killmail{}, fmt.Errorf("%w: package %d: no killmail and no valid zkb.hash", ErrBadInput, id)
	}
	km, err := p.esi.Killmail(ctx, id, zkb.Hash, env.ZKB)
	if err == nil {
		p.fetched.Add(1)
	}
	return km, err
}

// validHash accepts a killmail hash: hex digits only, so it is safe in a
// URL path.
func validHash(h string) bool {
	if len(h) == 0 || len(h) > 128 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
