package names

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
)

// Defaults of Config.
const (
	DefaultTTL        = 72 * time.Hour
	DefaultUnknownTTL = time.Hour
	DefaultWait       = time.Second
	DefaultMaxEntries = 500_000
	// retryAfterFailure is when ids whose lookup failed (without ESI asking
	// for a pause) are asked again.
	retryAfterFailure = 30 * time.Second
	// maxRetry bounds the ids waiting to be asked again.
	maxRetry = 100_000
)

// Config configures a Resolver. The zero value means the defaults (and no
// ESI: only names already cached are known).
type Config struct {
	// Client asks ESI; nil turns lookups off (--names=false).
	Client *Client
	// TTL is how long an answer is fresh; a stale one is still served while
	// it is asked again. 0 means DefaultTTL.
	TTL time.Duration
	// UnknownTTL is how long an id ESI does not know stays unknown before
	// it is asked again; 0 means DefaultUnknownTTL.
	UnknownTTL time.Duration
	// Wait bounds how long Warm holds a killmail for its lookups; 0 means
	// DefaultWait.
	Wait time.Duration
	// MaxEntries bounds the entries kept in memory; 0 means
	// DefaultMaxEntries. The Backing keeps every entry.
	MaxEntries int
	// Backing persists entries; nil keeps them in memory only.
	Backing Backing
	// Logger receives the resolver's logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts lookups; nil counts nowhere.
	Metrics *metrics.Names
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.UnknownTTL <= 0 {
		c.UnknownTTL = DefaultUnknownTTL
	}
	if c.Wait <= 0 {
		c.Wait = DefaultWait
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Resolver knows the names of characters, corporations and alliances,
// asking ESI about those it does not know. It is safe for concurrent use.
type Resolver struct {
	cfg    Config
	cache  *cache
	client *Client
	sf     singleflight.Group

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	inflight map[int64]chan struct{} // character ids in a POST
	retry    map[int64]Kind          // asked again when the timer fires
	timer    *time.Timer

	// added counts answers stored (names learnt, ids found unknown);
	// changed counts answers that replaced a different name or ticker.
	added, changed atomic.Uint64
}

// NewResolver returns a resolver. Close stops its lookups.
func NewResolver(cfg Config) *Resolver {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Resolver{
		cfg: cfg, cache: newCache(cfg.MaxEntries, cfg.Backing), client: cfg.Client,
		ctx: ctx, cancel: cancel,
		inflight: make(map[int64]chan struct{}), retry: make(map[int64]Kind),
	}
}

// Close stops lookups in flight and waits for them.
func (r *Resolver) Close() {
	r.mu.Lock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Len is the number of entries in memory.
func (r *Resolver) Len() int { return r.cache.len() }

// Versions returns how many answers the resolver has stored, and how many
// of those changed a name or ticker it had: a render made at other values
// may lack names that are known now.
func (r *Resolver) Versions() (added, changed uint64) { return r.added.Load(), r.changed.Load() }

// Asks says whether the resolver asks ESI (Config.Client is set): without,
// an id the cache does not know stays unknown, and a render that lacks it
// is not waiting for anything.
func (r *Resolver) Asks() bool { return r != nil && r.client != nil }

// Wait is the bound of Warm.
func (r *Resolver) Wait() time.Duration { return r.cfg.Wait }

// Lookup returns what the cache knows of id (memory, then the Backing),
// without asking ESI.
func (r *Resolver) Lookup(id int64) (Entry, bool) {
	e, ok, err := r.cache.get(id)
	if err != nil {
		r.cfg.Logger.Warn("names cache read", "id", id, "err", err)
	}
	return e, ok
}

type warmedKey struct{}

// WithWarmed marks ctx as carrying killmails whose lookups the caller
// already waited for: Warm then returns at once.
func WithWarmed(ctx context.Context) context.Context {
	return context.WithValue(ctx, warmedKey{}, true)
}

// Warm looks up the ids of kms that the cache does not know and waits
// until they are answered, at most Config.Wait (or until ctx is done).
// Lookups that take longer go on in the background.
func (r *Resolver) Warm(ctx context.Context, kms []killmail.Killmail) {
	if r == nil || r.client == nil || ctx.Value(warmedKey{}) != nil {
		return
	}
	done := r.Start(kms)
	t := time.NewTimer(r.cfg.Wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// Start looks up the ids of kms that the cache does not know, without
// waiting: the channel is closed once every one is answered (or its lookup
// failed).
func (r *Resolver) Start(kms []killmail.Killmail) <-chan struct{} {
	if r == nil || r.client == nil {
		return closedChan
	}
	var s wantSet
	for _, km := range kms {
		s.addKillmail(km.JSON)
	}
	return r.Resolve(s.w)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Resolve looks up the ids that the cache does not know (and refreshes
// stale ones, without waiting for those); the channel is closed once every
// unknown one is answered or its lookup failed.
func (r *Resolver) Resolve(w Wanted) <-chan struct{} {
	if r.client == nil || w.Len() == 0 {
		return closedChan
	}
	now := r.cfg.Now()
	var hits int
	var need, refresh [4][]int64 // by Kind: unknown ids (waited for), stale ones (not)
	for kind, ids := range map[Kind][]int64{Character: w.Characters, Corporation: w.Corporations, Alliance: w.Alliances} {
		for _, id := range ids {
			e, ok := r.Lookup(id)
			switch {
			case ok && r.fresh(e, now):
				hits++
			case ok && !e.Unknown:
				hits++ // stale: served, asked again in the background
				refresh[kind] = append(refresh[kind], id)
			default:
				need[kind] = append(need[kind], id)
			}
		}
	}
	r.cfg.Metrics.Lookups(hits, len(need[Character])+len(need[Corporation])+len(need[Alliance]))
	if until := r.client.BackingOff(); !until.IsZero() {
		for k := range need {
			need[k] = append(need[k], refresh[k]...)
		}
		r.later(need[Character], need[Corporation], need[Alliance], until)
		return closedChan
	}
	r.characters(refresh[Character])
	for _, id := range refresh[Corporation] {
		r.entity(Corporation, id)
	}
	for _, id := range refresh[Alliance] {
		r.entity(Alliance, id)
	}
	var waits []<-chan struct{}
	if ch := r.characters(need[Character]); ch != nil {
		waits = append(waits, ch)
	}
	for _, id := range need[Corporation] {
		waits = append(waits, r.entity(Corporation, id))
	}
	for _, id := range need[Alliance] {
		waits = append(waits, r.entity(Alliance, id))
	}
	if len(waits) == 0 {
		return closedChan
	}
	return r.join(waits)
}

// join is a channel closed once every one of waits is (or the resolver
// closes); waits must not be empty.
func (r *Resolver) join(waits []<-chan struct{}) <-chan struct{} {
	if len(waits) == 1 {
		return waits[0]
	}
	all := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(all)
		for _, ch := range waits {
			select {
			case <-ch:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	return all
}

func (r *Resolver) fresh(e Entry, now time.Time) bool {
	ttl := r.cfg.TTL
	if e.Unknown {
		ttl = r.cfg.UnknownTTL
	}
	return now.Sub(time.Unix(e.Fetched, 0)) < ttl
}

// characters asks POST /universe/names/ about the ids not in flight yet,
// in one call; the channel is closed once all of ids are answered.
func (r *Resolver) characters(ids []int64) <-chan struct{} {
	if len(ids) == 0 {
		return nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return closedChan
	}
	var fresh []int64
	var waits []<-chan struct{}
	seen := map[chan struct{}]bool{}
	mine := make(chan struct{})
	for _, id := range ids {
		if _, retrying := r.retry[id]; retrying {
			continue
		}
		if ch, ok := r.inflight[id]; ok {
			if !seen[ch] {
				seen[ch] = true
				waits = append(waits, ch)
			}
			continue
		}
		if e, ok := r.Lookup(id); ok && r.fresh(e, r.cfg.Now()) {
			continue // answered since the caller looked
		}
		r.inflight[id] = mine
		fresh = append(fresh, id)
	}
	r.mu.Unlock()
	if len(fresh) > 0 {
		waits = append(waits, mine)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			found, unknown, err := r.client.Names(r.ctx, fresh)
			now := r.cfg.Now().Unix()
			es := make([]Entry, 0, len(found)+len(unknown))
			done := make(map[int64]bool, len(fresh))
			for _, f := range found {
				es = append(es, Entry{ID: f.ID, Kind: kindOf(f.Category), Name: f.Name, Fetched: now})
				done[f.ID] = true
			}
			for _, id := range unknown {
				es = append(es, Entry{ID: id, Kind: Character, Unknown: true, Fetched: now})
				done[id] = true
			}
			r.store(es)
			if err != nil {
				var left []int64
				for _, id := range fresh {
					if !done[id] {
						left = append(left, id)
					}
				}
				r.failed(err, left, nil, nil)
			}
			r.mu.Lock()
			for _, id := range fresh {
				delete(r.inflight, id)
			}
			r.mu.Unlock()
			close(mine)
		}()
	}
	if len(waits) == 0 {
		return nil
	}
	return r.join(waits)
}

func kindOf(category string) Kind {
	switch category {
	case "corporation":
		return Corporation
	case "alliance":
		return Alliance
	}
	return Character
}

// entity asks GET /corporations/{id}/ or /alliances/{id}/, one call per id
// whoever asks at once.
func (r *Resolver) entity(kind Kind, id int64) <-chan struct{} {
	r.mu.Lock()
	_, retrying := r.retry[id]
	closed := r.closed
	r.mu.Unlock()
	if retrying || closed {
		return closedChan
	}
	done := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		_, _, _ = r.sf.Do(kind.String()+":"+strconv.FormatInt(id, 10), func() (any, error) {
			if e, ok := r.Lookup(id); ok && r.fresh(e, r.cfg.Now()) {
				return nil, nil // answered since the caller looked
			}
			get := r.client.Corporation
			if kind == Alliance {
				get = r.client.Alliance
			}
			ent, ok, err := get(r.ctx, id)
			now := r.cfg.Now().Unix()
			switch {
			case err != nil:
				if kind == Corporation {
					r.failed(err, nil, []int64{id}, nil)
				} else {
					r.failed(err, nil, nil, []int64{id})
				}
			case !ok:
				r.store([]Entry{{ID: id, Kind: kind, Unknown: true, Fetched: now}})
			default:
				r.store([]Entry{{ID: id, Kind: kind, Name: ent.Name, Ticker: ent.Ticker, Fetched: now}})
			}
			return nil, nil
		})
	}()
	return done
}

// store keeps answers and counts what they add or change.
func (r *Resolver) store(es []Entry) {
	if len(es) == 0 {
		return
	}
	var changed bool
	for _, e := range es {
		if old, ok := r.Lookup(e.ID); ok && !old.Unknown && (old.Name != e.Name || old.Ticker != e.Ticker) {
			changed = true
		}
	}
	if err := r.cache.put(es); err != nil {
		r.cfg.Logger.Warn("names cache write", "entries", len(es), "err", err)
	}
	if changed {
		r.changed.Add(1)
	}
	r.added.Add(1)
}

// failed puts the ids of a failed lookup aside, to be asked again when the
// client's pause ends (or after retryAfterFailure).
func (r *Resolver) failed(err error, chars, corps, alliances []int64) {
	if r.ctx.Err() != nil {
		return
	}
	until := r.client.BackingOff()
	if until.IsZero() {
		until = r.cfg.Now().Add(retryAfterFailure)
	}
	if !errors.Is(err, ErrBackingOff) {
		r.cfg.Logger.Debug("names lookup failed", "err", err)
	}
	r.later(chars, corps, alliances, until)
}

// later asks about ids again at until.
func (r *Resolver) later(chars, corps, alliances []int64, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for kind, ids := range map[Kind][]int64{Character: chars, Corporation: corps, Alliance: alliances} {
		for _, id := range ids {
			if len(r.retry) < maxRetry {
				r.retry[id] = kind
			}
		}
	}
	if len(r.retry) == 0 {
		return
	}
	d := max(time.Until(until), 10*time.Millisecond)
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.retryNow)
	} else {
		r.timer.Reset(d)
	}
}

// retryNow asks about the ids put aside.
func (r *Resolver) retryNow() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if until := r.client.BackingOff(); !until.IsZero() {
		r.timer.Reset(max(time.Until(until), 10*time.Millisecond))
		r.mu.Unlock()
		return
	}
	var w Wanted
	for id, kind := range r.retry {
		switch kind {
		case Character:
			w.Characters = append(w.Characters, id)
		case Corporation:
			w.Corporations = append(w.Corporations, id)
		case Alliance:
			w.Alliances = append(w.Alliances, id)
		}
	}
	clear(r.retry)
	r.mu.Unlock()
	r.Resolve(w)
}
