package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
)

// Defaults of the fault handling shared by the pollers.
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 2 * time.Minute
	// maxRetryAfter bounds an upstream's Retry-After (and ESI's error-limit
	// reset), so that a bogus header cannot park a source for days.
	maxRetryAfter = 10 * time.Minute
)

// backoff is exponential backoff with jitter: the n-th wait after a fault is
// drawn from [d/2, d] where d = min*2^n capped at max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	half := d / 2
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.n = 0 }

// streak tracks consecutive faults of one source: it logs the first fault
// of a streak and the recovery, not every retry.
type streak struct {
	log   *slog.Logger
	what  string
	b     backoff
	n     int
	since time.Time
	total int64 // faults ever, for Stats
}

func newStreak(log *slog.Logger, what string, lo, hi time.Duration) *streak {
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	return &streak{log: log, what: what, b: backoff{min: lo, max: max(lo, hi)}}
}

// fail records a fault and returns how long to wait before retrying: the
// upstream's Retry-After when it gave one, else the next backoff.
func (s *streak) fail(err error, retryAfter time.Duration) time.Duration {
	wait := s.b.next()
	if retryAfter > 0 {
		wait = min(retryAfter, maxRetryAfter)
	}
	if s.n == 0 {
		s.since = time.Now()
		s.log.Warn(s.what+" failing; retrying with backoff until it recovers",
			"err", err, "retry_in", wait.Round(time.Millisecond))
	}
	s.n++
	s.total++
	return wait
}

// ok ends a streak.
func (s *streak) ok() {
	if s.n > 0 {
		s.log.Info(s.what+" recovered", "failures", s.n,
			"after", time.Since(s.since).Round(time.Millisecond))
	}
	s.n = 0
	s.b.reset()
}

// storeCounts are a poller's counts of what it stored.
type storeCounts struct {
	inserted, duplicates, faults atomic.Int64
}

// storeUntilDone inserts kms with cursor, retrying store faults with the
// backoff of faults (what names the batch in the fault); it reports false
// only when ctx is done.
func (c *storeCounts) storeUntilDone(ctx context.Context, store Store, kms []killmail.Killmail, cursor *eventlog.Cursor, faults *streak, what string) bool {
	for {
		res, err := store.Insert(ctx, kms, cursor)
		if err == nil {
			for _, r := range res {
				if r.Duplicate {
					c.duplicates.Add(1)
				} else {
					c.inserted.Add(1)
				}
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.faults.Add(1)
		if !pause.For(ctx, faults.fail(fmt.Errorf("store %s: %w", what, err), 0)) {
			return false
		}
	}
}
