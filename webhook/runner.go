package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/pause"
)

// runner delivers one webhook. Its goroutine is the only one that reads
// and advances the webhook's offsets.
type runner struct {
	hook   Webhook
	m      *Manager
	gate   *gate
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status Status
	// missed says that killmails were dropped before the next event
	// delivered (json: it carries "missed":true).
	missed bool
}

func (r *runner) setState(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.State = state
	if err != nil {
		r.status.LastError = err.Error()
		r.status.LastErrorAt = time.Now().UTC()
	}
}

func (r *runner) setPosition(pos uint64) {
	r.mu.Lock()
	r.status.Position = pos
	r.mu.Unlock()
}

func (r *runner) snapshot() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *runner) failed() bool { return r.snapshot().State == StateFailed }

// errStopped ends a runner's loop when it is stopped.
var errStopped = errors.New("stopped")

// run is the runner's goroutine.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	src, client, f := r.m.src, r.hook.ClientID(), r.hook.Filter
	var pos uint64
	err := r.retry(ctx, func() error {
		var err error
		pos, err = src.Join(ctx, client, f)
		if err == nil {
			err = src.SetRetention(client, eventlog.RetainAlways)
		}
		return err
	})
	if err != nil {
		return
	}
	r.setPosition(pos)
	idle := r.m.cfg.IdleCheck
	for ctx.Err() == nil {
		changed := src.Changed()
		var b Batch
		err := r.retry(ctx, func() error {
			var err error
			b, err = src.Peek(ctx, client, f, r.m.cfg.BatchSize)
			return err
		})
		if err != nil {
			return
		}
		if b.Missed {
			if pos, err = r.reportMissed(ctx, pos, b); err != nil {
				return
			}
		}
		if len(b.Events) > 0 {
			r.setState(StateDelivering, nil)
			if pos, err = r.deliver(ctx, pos, b.Events); err != nil {
				return
			}
		}
		if b.Through > pos {
			if err := r.advance(ctx, b.Through); err != nil {
				return
			}
			pos = b.Through
		}
		if len(b.Events) > 0 || b.More {
			continue // there may be more
		}
		r.setState(StateIdle, nil)
		t := time.NewTimer(idle)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C: // a wake-up that went astray costs at most this
		}
		t.Stop()
	}
}

// retry calls op until it succeeds, backing off between failures (the
// store is restarting, or the client cap refused the webhook); it returns
// errStopped when the runner is stopped.
func (r *runner) retry(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errStopped
		}
		r.logger.Warn("webhook: reading the log failed; retrying", "webhook", r.hook.Name, "err", err)
		r.setState(StateRetrying, fmt.Errorf("read the log: %w", err))
		if !pause.For(ctx, r.m.backoff(attempt)) {
			return errStopped
		}
	}
}

// advance moves the offsets to through once a delivery succeeded.
func (r *runner) advance(ctx context.Context, through uint64) error {
	err := r.retry(ctx, func() error { return r.m.src.Advance(ctx, r.hook.ClientID(), r.hook.Filter, through) })
	if err == nil {
		r.setPosition(through)
	}
	return err
}

// reportMissed deals with events dropped before they were delivered: a
// discord webhook posts a message saying how many, a json one marks its
// next event. Its offsets then move to just before the oldest retained
// event, past what is gone.
func (r *runner) reportMissed(ctx context.Context, pos uint64, b Batch) (uint64, error) {
	var n uint64
	if b.Oldest > pos+1 {
		n = b.Oldest - 1 - pos
	}
	r.logger.Warn("webhook: killmails were dropped before delivery", "webhook", r.hook.Name, "up_to", n)
	if r.hook.Format == FormatDiscord {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		if err := r.send(ctx, missedMessage(n), h, 0); err != nil {
			return pos, err
		}
	} else {
		r.mu.Lock()
		r.missed = true
		r.mu.Unlock()
	}
	if through := b.Oldest - 1; through > pos {
		if err := r.advance(ctx, through); err != nil {
			return pos, err
		}
		pos = through
	}
	return pos, nil
}

// deliver posts evs in order, advancing after each accepted request.
func (r *runner) deliver(ctx context.Context, pos uint64, evs []eventlog.Event) (uint64, error) {
	if r.hook.Format == FormatDiscord {
		return r.deliverDiscord(ctx, pos, evs)
	}
	for _, ev := range evs {
		ev.Killmail = r.m.enrich(ctx, ev)
		r.mu.Lock()
		missed := r.missed
		r.mu.Unlock()
		body := jsonBody(ev, missed)
		if err := r.send(ctx, body, jsonHeader(ev.ID, r.hook.Secret, body), 1); err != nil {
			return pos, err
		}
		r.mu.Lock()
		r.missed = false
		r.mu.Unlock()
		if err := r.advance(ctx, ev.ID); err != nil {
			return pos, err
		}
		pos = ev.ID
	}
	return pos, nil
}

func (r *runner) deliverDiscord(ctx context.Context, pos uint64, evs []eventlog.Event) (uint64, error) {
	embeds := make([]discordEmbed, 0, len(evs))
	ids := make([]uint64, 0, len(evs))
	for _, ev := range evs {
		em, err := discordEmbedOf(r.m.enrich(ctx, ev), r.hook.Filter.Entities, r.m.cfg.Universe,
			"killfeed · "+r.hook.Name+" · event "+strconv.FormatUint(ev.ID, 10))
		if err != nil {
			// A stored killmail always decodes; one that does not is
			// skipped rather than blocking the webhook for ever.
			r.logger.Error("webhook: killmail skipped", "webhook", r.hook.Name, "event_id", ev.ID, "err", err)
			continue
		}
		embeds = append(embeds, em)
		ids = append(ids, ev.ID)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	for len(embeds) > 0 {
		n := packEmbeds(embeds)
		body, err := jsonMarshal(discordMessage{Embeds: embeds[:n]})
		if err != nil {
			return pos, err
		}
		if err := r.send(ctx, body, h, n); err != nil {
			return pos, err
		}
		if err := r.advance(ctx, ids[n-1]); err != nil {
			return pos, err
		}
		pos = ids[n-1]
		embeds, ids = embeds[n:], ids[n:]
	}
	return pos, nil
}

// send posts body until the receiver accepts it (nil), the webhook fails
// (ErrRejected too often) or the runner stops. killmails is how many it
// carries, for the metrics.
func (r *runner) send(ctx context.Context, body []byte, h http.Header, killmails int) error {
	cfg := &r.m.cfg
	h.Set("User-Agent", cfg.UserAgent)
	rejected, attempt := 0, 0
	for {
		a, ok := r.attempt(ctx, body, h)
		if !ok {
			return errStopped
		}
		now := time.Now()
		if a.err == nil {
			r.m.metrics.delivered.WithLabelValues(r.hook.Name).Add(float64(killmails))
			r.setState(StateDelivering, nil)
			return nil
		}
		if ctx.Err() != nil {
			return errStopped
		}
		switch {
		case errors.Is(a.err, ErrRateLimited):
			r.m.metrics.failed.WithLabelValues(r.hook.Name, reasonRateLimited).Inc()
			wait := a.retryAfter
			if wait <= 0 {
				wait = r.m.backoff(attempt)
				attempt++
				r.gate.holdUntil(now.Add(wait))
			}
			r.setState(StateRateLimited, a.err)
			r.logger.Info("webhook: rate limited", "webhook", r.hook.Name, "wait", wait)
			continue
		case errors.Is(a.err, ErrRejected):
			r.m.metrics.failed.WithLabelValues(r.hook.Name, reasonRejected).Inc()
			rejected++
			if rejected > cfg.MaxRejections {
				r.fail(a.err)
				return a.err
			}
		default:
			r.m.metrics.failed.WithLabelValues(r.hook.Name, reasonUnavailable).Inc()
		}
		wait := r.m.backoff(attempt)
		attempt++
		r.setState(StateRetrying, a.err)
		r.logger.Warn("webhook: delivery failed; retrying", "webhook", r.hook.Name, "err", a.err, "in", wait)
		if !pause.For(ctx, wait) {
			return errStopped
		}
	}
}

// attempt sends body once, in the URL's turn and once its rate limit
// allows; the answer's rate-limit headers are applied before the turn
// passes on. false when the runner stopped first.
func (r *runner) attempt(ctx context.Context, body []byte, h http.Header) (answer, bool) {
	if !r.gate.enter(ctx) {
		return answer{}, false
	}
	defer r.gate.leave()
	if wait := time.Until(r.gate.opensAt()); wait > 0 {
		r.setState(StateRateLimited, nil)
		if !pause.For(ctx, wait) {
			return answer{}, false
		}
	}
	rctx, cancel := context.WithTimeout(ctx, r.m.cfg.Timeout)
	a := post(rctx, r.m.client, r.hook.URL, body, h)
	cancel()
	now := time.Now()
	if a.resetAfter > 0 {
		r.gate.holdUntil(now.Add(a.resetAfter))
	}
	if a.retryAfter > 0 {
		r.gate.holdUntil(now.Add(a.retryAfter))
	}
	return a, true
}

// fail marks the webhook failed until the file is reloaded: it stops
// delivering and holds retention back no more.
func (r *runner) fail(err error) {
	r.setState(StateFailed, err)
	r.logger.Error("webhook failed: stopped until the webhooks file is reloaded", "webhook", r.hook.Name, "err", err)
	if e := r.m.src.SetRetention(r.hook.ClientID(), eventlog.RetainNothing); e != nil {
		r.logger.Error("webhook: release retention", "webhook", r.hook.Name, "err", e)
	}
}
