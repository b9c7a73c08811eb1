package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/names"
)

// Defaults of R2Z2Config.
const (
	DefaultR2Z2URL     = "https://r2z2.zkillboard.com/ephemeral"
	DefaultR2Z2Idle    = 6 * time.Second
	DefaultR2Z2Rate    = 4
	DefaultR2Z2Timeout = 10 * time.Second
	// R2Z2Cursor is the name of the stored cursor holding the last R2Z2
	// sequence ingested.
	R2Z2Cursor = "r2z2"
)

// R2Z2Config configures the R2Z2 poller. The zero value means the defaults.
type R2Z2Config struct {
	// URL is the feed's base URL, without a trailing slash; "" means DefaultR2Z2URL.
	URL string
	// Idle is how long to wait after a 404 (the next file is not there yet)
	// before asking again; 0 means DefaultR2Z2Idle.
	Idle time.Duration
	// Rate is the most requests in any one-second window, spaced evenly
	// (no bursts); 0 means DefaultR2Z2Rate.
	Rate float64
	// Start is the first sequence to fetch when no cursor is stored; 0
	// means the current sequence.json.
	Start uint64
	// Timeout bounds one request; 0 means DefaultR2Z2Timeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a fault; 0 means
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Client is the HTTP client; nil means a client of its own.
	Client *http.Client
	// Logger receives the poller's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts requests by outcome and tracks the sequence; nil
	// counts nowhere.
	Metrics *metrics.Upstream
	// Names, when set, looks up the names of each file's killmail as soon
	// as it is fetched; files are stored in order, each once its names are
	// answered or the resolver's wait has passed, while the next ones are
	// fetched (see ordered). nil stores each file as it comes.
	Names *names.Resolver
}

func (c R2Z2Config) withDefaults() R2Z2Config {
	if c.URL == "" {
		c.URL = DefaultR2Z2URL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Idle <= 0 {
		c.Idle = DefaultR2Z2Idle
	}
	if c.Rate <= 0 {
		c.Rate = DefaultR2Z2Rate
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultR2Z2Timeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports invalid fields by their flag names.
func (c R2Z2Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if err := validURL(c.URL); err != nil {
			errs = append(errs, configError("r2z2-url", "%v", err))
		}
	}
	if c.Idle < 0 {
		errs = append(errs, configError("r2z2-idle", "must not be negative, got %s", c.Idle))
	}
	if c.Rate < 0 {
		errs = append(errs, configError("r2z2-rate", "must not be negative, got %g", c.Rate))
	}
	if c.Timeout < 0 {
		errs = append(errs, configError("r2z2-timeout", "must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// R2Z2Stats counts what an R2Z2 poller did since it was created.
type R2Z2Stats struct {
	// Files is the number of sequence files fetched (200s).
	Files int64
	// Inserted and Duplicates count stored killmails by outcome.
	Inserted, Duplicates int64
	// Skipped counts files that were not valid killmails.
	Skipped int64
	// NotYet counts 404s (the next file was not there yet).
	NotYet int64
	// Faults counts failed requests and inserts that were retried.
	Faults int64
	// Next is the sequence the poller fetches next; 0 before it knows.
	Next uint64
}

// R2Z2 polls zKillboard's R2Z2 feed: GET {url}/sequence.json for the
// current sequence, then GET {url}/{seq}.json for seq, seq+1, … . Each
// file's killmail is stored with the cursor R2Z2Cursor = seq in the same
// write, so that after a restart polling resumes right after the last stored
// file.
type R2Z2 struct {
	cfg     R2Z2Config
	store   Store
	client  *http.Client
	limiter waiter
	log     *slog.Logger

	storeCounts
	files, skipped, notYet atomic.Int64
	next                   atomic.Uint64
	requests               metrics.Outcome
}

// NewR2Z2 returns a poller that stores into store. Run starts it.
func NewR2Z2(store Store, cfg R2Z2Config) (*R2Z2, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &R2Z2{
		cfg:      cfg,
		store:    store,
		client:   newClient(cfg.Client),
		limiter:  rate.NewLimiter(rate.Limit(cfg.Rate), 1),
		log:      cfg.Logger,
		requests: cfg.Metrics.Requests(metrics.UpstreamR2Z2),
	}, nil
}

// waiter spaces the poller's requests: each waits for its turn. A
// *rate.Limiter with burst 1 is one; tests wrap it to see its reservations.
type waiter interface {
	Wait(ctx context.Context) error
}

// Stats returns the poller's counters.
func (p *R2Z2) Stats() R2Z2Stats {
	return R2Z2Stats{
		Files: p.files.Load(), Inserted: p.inserted.Load(), Duplicates: p.duplicates.Load(),
		Skipped: p.skipped.Load(), NotYet: p.notYet.Load(), Faults: p.faults.Load(),
		Next: p.next.Load(),
	}
}

// Run polls until ctx is done and then returns nil. Faults are retried,
// never returned.
func (p *R2Z2) Run(ctx context.Context) error {
	ctx = actors.WithSource(ctx, metrics.SourceR2Z2)
	faults := newStreak(p.log, "r2z2", p.cfg.BackoffMin, p.cfg.BackoffMax)
	seq, ok := p.start(ctx, faults)
	if !ok {
		return nil
	}
	p.log.Info("r2z2 polling", "url", p.cfg.URL, "sequence", seq)
	var pipe *ordered
	if p.cfg.Names != nil {
		ctx, cancel := context.WithCancel(ctx)
		pipe = startOrdered(ctx, p.cfg.Names)
		defer pipe.wait()
		defer cancel()
	}
	storeFaults := newStreak(p.log, "r2z2 store", p.cfg.BackoffMin, p.cfg.BackoffMax)
	for {
		p.next.Store(seq)
		p.cfg.Metrics.R2Z2Sequence(seq)
		if err := p.limiter.Wait(ctx); err != nil {
			return nil
		}
		body, _, err := get(ctx, p.client, p.fileURL(seq), p.cfg.Timeout)
		if ctx.Err() == nil && err != nil {
			p.requests.Add(outcomeOf(err)) // a 200 is counted by store1, once parsed
		}
		if err == nil || errors.Is(err, ErrBadInput) {
			p.cfg.Metrics.R2Z2Newest(seq)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrNotFound):
			faults.ok()
			p.notYet.Add(1)
			if !pause.For(ctx, p.cfg.Idle) {
				return nil
			}
			continue
		case errors.Is(err, ErrBadInput):
			faults.ok()
			body = nil // stored as a skipped file below
		case err != nil:
			p.faults.Add(1)
			if !pause.For(ctx, faults.fail(err, retryAfterOf(err))) {
				return nil
			}
			continue
		default:
			p.files.Add(1)
		}
		if pipe != nil {
			var kms []killmail.Killmail
			if km, err := killmail.Parse(body); body != nil && err == nil {
				kms = []killmail.Killmail{km}
			}
			file, fileSeq := body, seq
			if !pipe.add(ctx, kms, func(ctx context.Context) bool { return p.store1(ctx, fileSeq, file, storeFaults) }) {
				return nil
			}
		} else if !p.store1(ctx, seq, body, faults) {
			return nil
		}
		faults.ok()
		seq++
	}
}

// store1 stores file seq's killmail with the cursor, or only the cursor
// when the file is not a valid killmail. It retries store faults and
// reports false only when ctx is done.
func (p *R2Z2) store1(ctx context.Context, seq uint64, body []byte, faults *streak) bool {
	var kms []killmail.Killmail
	km, err := killmail.Parse(body)
	switch {
	case body == nil: // Run counted the request
	case err != nil:
		p.requests.Add(metrics.OutcomeMalformed)
	default:
		p.requests.Add(metrics.OutcomeOK)
	}
	if err != nil {
		p.skipped.Add(1)
		p.log.Warn("r2z2 file skipped", "sequence", seq, "err", err)
	} else {
		kms = []killmail.Killmail{km}
	}
	cursor := &eventlog.Cursor{Name: R2Z2Cursor, Value: seq}
	return p.storeUntilDone(ctx, p.store, kms, cursor, faults, fmt.Sprintf("sequence %d", seq))
}

// start returns the first sequence to fetch: after the stored cursor, else
// cfg.Start, else the current sequence.json.
func (p *R2Z2) start(ctx context.Context, faults *streak) (uint64, bool) {
	if v, ok := p.store.Cursor(R2Z2Cursor); ok {
		return v + 1, true
	}
	if p.cfg.Start > 0 {
		return p.cfg.Start, true
	}
	url := p.cfg.URL + "/sequence.json"
	for {
		if err := p.limiter.Wait(ctx); err != nil {
			return 0, false
		}
		body, _, err := get(ctx, p.client, url, p.cfg.Timeout)
		if ctx.Err() != nil {
			return 0, false
		}
		if err != nil {
			p.requests.Add(outcomeOf(err))
		}
		if err == nil {
			var seq uint64
			if seq, err = parseSequence(body); err == nil {
				p.requests.Add(metrics.OutcomeOK)
				p.cfg.Metrics.R2Z2Newest(seq)
				faults.ok()
				return seq, true
			}
			err = fmt.Errorf("GET %s: %w", url, err)
			p.requests.Add(metrics.OutcomeMalformed)
		}
		p.faults.Add(1)
		if !pause.For(ctx, faults.fail(err, retryAfterOf(err))) {
			return 0, false
		}
	}
}

// parseSequence reads sequence.json: {"sequence": N} with N a positive
// integer. Anything else is ErrBadInput naming the field.
func parseSequence(body []byte) (uint64, error) {
	var doc struct {
		Sequence json.Number `json:"sequence"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, fmt.Errorf("%w: sequence.json: %v", ErrBadInput, err)
	}
	n, err := doc.Sequence.Int64()
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: sequence: %q is not a positive integer", ErrBadInput, doc.Sequence)
	}
	return uint64(n), nil
}

func (p *R2Z2) fileURL(seq uint64) string {
	return p.cfg.URL + "/" + strconv.FormatUint(seq, 10) + ".json"
}
