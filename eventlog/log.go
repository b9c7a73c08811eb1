package eventlog

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// record is one retained event in memory.
type record struct {
	id     uint64
	system int64
	time   int64  // insert time, Unix nanoseconds
	size   int64  // killmail bytes
	body   []byte // nil when the Store serves it
	// facts are what a selection's predicate looks at, extracted once
	// when the killmail is stored (or loaded).
	facts *selection.Facts
}

// systemIndex lists a system's retained event ids, ascending.
type systemIndex struct {
	ids []uint64
	// dropped is the newest event id of this system removed from the log;
	// a reader positioned before it has missed events.
	dropped uint64
}

// seenKillmail remembers a killmail id for dedupe.
type seenKillmail struct {
	killmailID int64
	eventID    uint64
	time       int64
}

type client struct {
	offsets  map[int64]uint64
	lastSeen int64
	owner    string // the read key it is bound to ("" while unbound)
	// retention is how it takes part in retention (in memory only).
	retention Retention
}

// pending is an appended batch that is written but not yet visible.
type pending struct {
	recs []record
	err  error
	done chan struct{} // closed once err is set (durable appends only)
}

// awaited is a duplicate of a killmail whose first write is still in
// flight: its answer depends on that write.
type awaited struct {
	index int
	km    killmail.Killmail
	first *pending
}

// Log is the ordered killmail log. See the package documentation.
type Log struct {
	cfg   Config
	store Store
	keep  bool // every body lives in memory (no Store, or one that does not serve bodies)
	// Notify, when set, is called with events as they become visible, in
	// event_id order, while the log's lock is held: it must not block or call
	// back into the Log.
	notify func([]Event)

	// flushMu serialises Flush, so that an older snapshot of a client's
	// offsets is never written over a newer one.
	flushMu sync.Mutex

	mu       sync.Mutex
	closed   bool
	nextID   uint64
	visible  uint64 // every id <= visible is visible or failed
	head     uint64 // newest visible id
	recs     []record
	bytes    int64
	systems  map[int64]*systemIndex
	seen     map[int64]uint64 // killmail id -> event id
	seenFIFO []seenKillmail   // ascending by event id and time
	clients  map[string]*client
	dirty    map[string]struct{}
	gone     map[string]struct{}
	written  map[uint64]*pending // by first id, waiting for earlier batches
	cursors  map[string]uint64
	inflight map[int64]*pending // killmail id -> durable write in flight
	// hot is the index in recs of the oldest record whose body is cached
	// in memory (-1: none yet), hotBytes the cached bytes; used without keep.
	hot      int
	hotBytes int64
	// dropped is the newest event id removed from the log, any system: a
	// reader of AllSystems positioned before it has missed events.
	dropped uint64
	// capDropped counts the events the caps dropped as appends came in,
	// reported (and reset) by the next Collect.
	capDropped int
}

// Open returns a Log over store, rebuilding the index from it. A nil store
// gives the memory backend.
func Open(cfg Config, store Store) (*Log, error) {
	l := &Log{
		cfg:      cfg.withDefaults(),
		store:    store,
		keep:     store == nil || !store.KeepsBodies(),
		nextID:   1,
		systems:  make(map[int64]*systemIndex),
		seen:     make(map[int64]uint64),
		hot:      -1,
		clients:  make(map[string]*client),
		dirty:    make(map[string]struct{}),
		gone:     make(map[string]struct{}),
		written:  make(map[uint64]*pending),
		cursors:  make(map[string]uint64),
		inflight: make(map[int64]*pending),
	}
	if store == nil {
		return l, nil
	}
	ld, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("load store: %w", err)
	}
	l.nextID = max(ld.NextID, 1)
	l.visible = l.nextID - 1
	l.head = l.visible
	for _, r := range ld.Forgotten {
		if si := l.systems[r.SystemID]; si != nil {
			si.dropped = max(si.dropped, r.ID)
		} else {
			l.systems[r.SystemID] = &systemIndex{dropped: r.ID}
		}
	}
	l.recs = make([]record, 0, len(ld.Records))
	l.seen = make(map[int64]uint64, len(ld.Records)+len(ld.Forgotten))
	l.seenFIFO = make([]seenKillmail, 0, len(ld.Records)+len(ld.Forgotten))
	for _, r := range ld.Forgotten {
		l.remember(r.KillmailID, r.ID, r.Time)
	}
	for _, r := range ld.Records {
		l.remember(r.KillmailID, r.ID, r.Time)
		size := r.Size
		if r.Body != nil {
			size = int64(len(r.Body))
		}
		body := r.Body
		if !l.keep {
			body = nil // served by the store until new appends warm the cache
		}
		var facts *selection.Facts
		if r.Body != nil {
			facts = selection.Extract(r.Body)
		}
		l.index(record{id: r.ID, system: r.SystemID, time: r.Time, size: size, body: body, facts: facts})
	}

	if !l.keep {
		l.hot = len(l.recs)
	}
	// Ids below the oldest retained one were dropped (or failed to write,
	// which a reader cannot tell apart).
	if len(l.recs) > 0 {
		l.dropped = l.recs[0].id - 1
	} else {
		l.dropped = l.nextID - 1
	}
	for _, c := range ld.Clients {
		l.clients[c.ID] = &client{offsets: c.Offsets, lastSeen: c.LastSeen, owner: c.Owner}
	}
	for _, c := range ld.Cursors {
		l.cursors[c.Name] = c.Value
	}
	return l, nil
}

// setFacts keeps the facts a reader extracted from bodies read from disk
// (evs), for the records loaded without them, under one lock.
func (l *Log) setFacts(evs []Event) {
	if len(evs) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		if r := l.record(ev.ID); r != nil && r.facts == nil {
			r.facts = ev.Facts
		}
	}
}

// knownFacts sets the Facts of the events of evs at index that were read
// without them, when the log has them now: another reader of the same
// events extracted them since. Then ReadBodies does not extract them again.
func (l *Log) knownFacts(evs []Event, index []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, i := range index {
		if ev := &evs[i]; ev.Facts == nil {
			if r := l.record(ev.ID); r != nil {
				ev.Facts = r.facts
			}
		}
	}
}

// SetNotify sets the function called with newly visible events (see the
// notify field). Call it before the first Append.
func (l *Log) SetNotify(fn func([]Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify = fn
}

func (l *Log) remember(killmailID int64, eventID uint64, t int64) {
	l.seen[killmailID] = eventID
	l.seenFIFO = append(l.seenFIFO, seenKillmail{killmailID: killmailID, eventID: eventID, time: t})
}

// index adds a visible record to the in-memory index. Without keep, the
// newest bodies stay in memory up to HotBytes (the cache that serves readers
// near the head without the disk); older ones are released to the store.
func (l *Log) index(r record) {
	l.recs = append(l.recs, r)
	l.bytes += r.size
	if !l.keep && r.body != nil {
		if l.hot < 0 {
			l.hot = len(l.recs) - 1
		}
		l.hotBytes += r.size
		for l.hotBytes > l.cfg.HotBytes && l.hot < len(l.recs) {
			c := &l.recs[l.hot]
			c.body = nil
			l.hotBytes -= c.size
			l.hot++
		}
	}
	si := l.systems[r.system]
	if si == nil {
		si = &systemIndex{}
		l.systems[r.system] = si
	}
	si.ids = append(si.ids, r.id)
}

// Append stores killmails and returns their event ids, in input order. A
// killmail whose id is already stored (or earlier in kms) is not stored
// again: its result carries the existing event id and Duplicate. The optional
// cursor is stored in the same write. Events become visible, and Append
// returns, only once they are durable.
func (l *Log) Append(kms []killmail.Killmail, cursor *Cursor) ([]AppendResult, error) {
	facts := make([]*selection.Facts, len(kms))
	for i, km := range kms {
		facts[i] = selection.Extract(km.JSON)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	now := l.cfg.Now().UnixNano()
	results := make([]AppendResult, len(kms))
	var p pending
	if l.store != nil {
		p.done = make(chan struct{})
	}
	var stored []Record
	var waits []awaited
	for i, km := range kms {
		if id, ok := l.seen[km.ID]; ok {
			results[i] = AppendResult{EventID: id, Duplicate: true}
			if first := l.inflight[km.ID]; first != nil && first != &p {
				waits = append(waits, awaited{index: i, km: km, first: first})
			}
			continue
		}
		id := l.nextID
		l.nextID++
		l.remember(km.ID, id, now)
		results[i] = AppendResult{EventID: id}
		p.recs = append(p.recs, record{id: id, system: km.SystemID, time: now, size: int64(len(km.JSON)), body: km.JSON, facts: facts[i]})
		if l.store != nil {
			stored = append(stored, Record{ID: id, SystemID: km.SystemID, KillmailID: km.ID, Time: now, Body: km.JSON})
			l.inflight[km.ID] = &p
		}
	}
	if len(p.recs) == 0 && cursor == nil {
		l.mu.Unlock()
		return l.settle(results, waits)
	}
	if l.store == nil {
		defer l.mu.Unlock()
		if cursor != nil {
			l.cursors[cursor.Name] = cursor.Value
		}
		l.publish(&p)
		return results, nil
	}
	l.mu.Unlock()

	// Write outside the lock: concurrent appends share the store's sync.
	var cursors []Cursor
	if cursor != nil {
		cursors = []Cursor{*cursor}
	}
	err := l.store.Append(stored, cursors)

	l.mu.Lock()
	p.err = err
	for _, r := range stored {
		delete(l.inflight, r.KillmailID)
		if err != nil {
			delete(l.seen, r.KillmailID) // a retry may store it again
		}
	}
	if err == nil && cursor != nil {
		l.cursors[cursor.Name] = max(l.cursors[cursor.Name], cursor.Value)
	}
	l.publish(&p)
	close(p.done)
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrite, err)
	}
	return l.settle(results, waits)
}

// settle answers the duplicates whose first write was in flight: once it
// is durable they are duplicates indeed; if it failed, they are stored now,
// so that no caller is told "already stored" about a killmail that is not.
func (l *Log) settle(results []AppendResult, waits []awaited) ([]AppendResult, error) {
	var retry []awaited
	for _, w := range waits {
		<-w.first.done
		if w.first.err != nil {
			retry = append(retry, w)
		}
	}
	if len(retry) == 0 {
		return results, nil
	}
	kms := make([]killmail.Killmail, len(retry))
	for i, w := range retry {
		kms[i] = w.km
	}
	res, err := l.Append(kms, nil)
	if err != nil {
		return nil, err
	}
	for i, w := range retry {
		results[w.index] = res[i]
	}
	return results, nil
}

// publish makes written batches visible in id order. Called with mu held.
func (l *Log) publish(p *pending) {
	if len(p.recs) == 0 {
		return
	}
	// Batches finish out of order only with a durable store; the next one in
	// line (always, for the memory backend) needs no parking.
	next := p
	if p.recs[0].id != l.visible+1 {
		l.written[p.recs[0].id] = p
		next = nil
	}
	for {
		if next == nil {
			var ok bool
			if next, ok = l.written[l.visible+1]; !ok {
				break
			}
			delete(l.written, l.visible+1)
		}
		l.visible = next.recs[len(next.recs)-1].id
		if next.err != nil {
			next = nil
			continue
		}
		evs := make([]Event, len(next.recs))
		for i, r := range next.recs {
			evs[i] = Event{ID: r.id, SystemID: r.system, Killmail: r.body, Facts: r.facts}
			l.index(r)
		}
		l.head = l.visible
		if d := l.enforceSizeCaps(); d > 0 {
			l.capDropped += d
			// A failure leaves the bodies on disk; the next Collect retries.
			_ = l.persistDrop(l.oldest() - 1)
		}
		if l.notify != nil {
			l.notify(evs)
		}
		next = nil
	}
}

// Head is the newest visible event id (0 when none was ever stored).
func (l *Log) Head() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// oldest is the oldest retained id, or head+1 when nothing is retained.
func (l *Log) oldest() uint64 {
	if len(l.recs) > 0 {
		return l.recs[0].id
	}
	return l.head + 1
}

// Cursor returns the stored value of a named cursor.
func (l *Log) Cursor(name string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.cursors[name]
	return v, ok
}

// Fetch returns up to limit events of sel that clientID has not read,
// ascending, and advances the client's offset of every system of sel to
// the newest event considered, matching or not (Batch.Through): the head,
// unless the limit or the scan bound stopped the read first (Batch.More).
// A new client, or a system new to it, starts at the oldest retained
// event. limit <= 0 means no limit.
func (l *Log) Fetch(clientID string, sel selection.Selection, limit int) (Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Batch{}, ErrClosed
	}
	if err := l.admit(clientID); err != nil {
		return Batch{}, err
	}
	c := l.client(clientID)
	b, err := l.read(sel, func(s int64) (uint64, bool) { o, ok := c.offsets[s]; return o, ok }, limit)
	if err != nil {
		return Batch{}, err
	}
	if len(b.Events) > 0 {
		b.undo = l.undoAdvance(clientID, c, sel.Systems, b.Through)
	}
	l.advance(clientID, c, sel.Systems, b.Through)
	return b, nil
}

// Peek is Fetch without advancing the client's offsets (it still marks the
// client as seen).
func (l *Log) Peek(clientID string, sel selection.Selection, limit int) (Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Batch{}, ErrClosed
	}
	if err := l.admit(clientID); err != nil {
		return Batch{}, err
	}
	c := l.client(clientID)
	l.dirty[clientID] = struct{}{}
	return l.read(sel, func(s int64) (uint64, bool) { o, ok := c.offsets[s]; return o, ok }, limit)
}

// Since returns up to limit retained events of sel with id > after,
// ascending. Missed is set when an event of sel's systems with id > after
// was already dropped.
func (l *Log) Since(sel selection.Selection, after uint64, limit int) (Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Batch{}, ErrClosed
	}
	return l.read(sel, func(int64) (uint64, bool) { return after, true }, limit)
}

// Join starts a new client at the head of systems, so that it receives
// only events stored from now on (RedisQ's semantics for a new queue). A
// client that exists is left as it is.
func (l *Log) Join(clientID string, systems []int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if c, ok := l.clients[clientID]; ok && !c.claimedOnly() {
		return nil
	}
	if err := l.admit(clientID); err != nil {
		return err
	}
	l.advance(clientID, l.client(clientID), systems, l.head)
	return nil
}

// Advance moves clientID's offsets for systems forward to through (never
// back), as if it had read every event of those systems up to there.
func (l *Log) Advance(clientID string, systems []int64, through uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.admit(clientID); err != nil {
		return err
	}
	l.advance(clientID, l.client(clientID), systems, through)
	return nil
}

func (l *Log) advance(id string, c *client, systems []int64, through uint64) {
	for _, s := range systems {
		if o, ok := c.offsets[s]; !ok || o < through {
			c.offsets[s] = through
		}
	}
	l.dirty[id] = struct{}{}
}

// undoAdvance records what puts c's offsets for systems back where they are
// now, once advance has moved them to through, except those that moved on
// again since. Called with mu held; its run takes mu.
func (l *Log) undoAdvance(id string, c *client, systems []int64, through uint64) *unread {
	u := &unread{l: l, id: id, c: c, through: through}
	u.back = u.small[:0]
	if len(systems) > len(u.small) {
		u.back = make([]prior, 0, len(systems))
	}
	for _, s := range systems {
		if o, ok := c.offsets[s]; !ok || o < through {
			u.back = append(u.back, prior{s, o, ok})
		}
	}
	return u
}

// unread puts a Fetch's offsets back (see Batch.Unread).
type unread struct {
	l       *Log
	id      string
	c       *client
	through uint64
	back    []prior
	small   [4]prior // back's storage for a few systems
}

// prior is a client's offset in a system before a Fetch advanced it.
type prior struct {
	system int64
	offset uint64
	had    bool
}

func (u *unread) run() {
	l, c := u.l, u.c
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.clients[u.id] != c {
		return
	}
	for _, p := range u.back {
		switch {
		case c.offsets[p.system] != u.through:
		case p.had:
			c.offsets[p.system] = p.offset
		default:
			delete(c.offsets, p.system)
		}
	}
	l.dirty[u.id] = struct{}{}
}

// client returns the named client, creating it, and marks it seen.
func (l *Log) client(id string) *client {
	c := l.clients[id]
	if c == nil {
		c = &client{offsets: make(map[int64]uint64)}
		l.clients[id] = c
		delete(l.gone, id)
	}
	c.lastSeen = l.cfg.Now().UnixNano()
	return c
}

// cursorHeap merges per-system id lists by their next id.
type cursorHeap []*sysCursor

type sysCursor struct {
	ids    []uint64
	pos    int
	system int64
}

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].ids[h[i].pos] < h[j].ids[h[j].pos] }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*sysCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// read merges the events of sel's systems after each system's position,
// keeping those sel's predicate matches. Called with mu held. Cost:
// O(systems × log n + considered × log systems), where a read with a
// predicate considers at most MaxScan events. When sel holds AllSystems
// only its position counts: every event is read once.
func (l *Log) read(sel selection.Selection, after func(int64) (uint64, bool), limit int) (Batch, error) {
	b := Batch{Head: l.head, Oldest: l.oldest()}
	if sel.IsAll() {
		return l.readAll(b, sel.Where, after, limit)
	}
	systems := distinct(sel.Systems)
	h := make(cursorHeap, 0, len(systems))
	left := 0 // events after the positions
	for _, s := range systems {
		si := l.systems[s]
		if si == nil {
			continue
		}
		pos, known := after(s)
		if known && pos < si.dropped {
			b.Missed = true
		}
		i := searchAfter(si.ids, pos)
		if i < len(si.ids) {
			h = append(h, &sysCursor{ids: si.ids, pos: i, system: s})
			left += len(si.ids) - i
		}
	}
	heap.Init(&h)
	b.Events = sized(sel.Where, left, limit)
	scan := l.scanBound(sel.Where)
	var last uint64
	for h.Len() > 0 && (limit <= 0 || len(b.Events) < limit) && scan != 0 {
		c := h[0]
		id := c.ids[c.pos]
		r := l.record(id)
		last, scan = id, scan-1
		if r != nil && l.candidate(&b, sel.Where, r) {
			b.Events = append(b.Events, Event{ID: id, SystemID: c.system, Killmail: r.body, Facts: r.facts})
		}
		c.pos++
		if c.pos == len(c.ids) {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	b.More = h.Len() > 0
	b.Through = b.Head
	if scan == 0 || (limit > 0 && len(b.Events) == limit) {
		b.Through = last // stopped: what follows was not considered
	}
	return b, l.leaveOnDisk(&b)
}

// candidate says whether a read with predicate where returns r: it
// matches, or its facts are not known yet (a record loaded from disk whose
// body was never read), when ReadBodies decides. Called with mu held.
func (l *Log) candidate(b *Batch, where selection.Predicate, r *record) bool {
	if r.facts == nil && !where.Empty() {
		b.where = where
		return true
	}
	return where.Match(r.facts)
}

// scanBound is how many events a read with predicate where may consider:
// MaxScan, or -1 (no bound) for the empty predicate, whose reads the
// limit bounds.
func (l *Log) scanBound(where selection.Predicate) int {
	if where.Empty() {
		return -1
	}
	return l.cfg.MaxScan
}

// readAll reads every event after the position of AllSystems. Called with
// mu held. Cost: O(log n + considered).
func (l *Log) readAll(b Batch, where selection.Predicate, after func(int64) (uint64, bool), limit int) (Batch, error) {
	pos, known := after(AllSystems)
	if known && pos < l.dropped {
		b.Missed = true
	}
	scan := l.scanBound(where)
	i := searchRecsAfter(l.recs, pos)
	b.Events = sized(where, len(l.recs)-i, limit)
	for ; i < len(l.recs) && (limit <= 0 || len(b.Events) < limit) && scan != 0; i++ {
		r := &l.recs[i]
		scan--
		if l.candidate(&b, where, r) {
			b.Events = append(b.Events, Event{ID: r.id, SystemID: r.system, Killmail: r.body, Facts: r.facts})
		}
	}
	b.More = i < len(l.recs)
	b.Through = b.Head
	if i > 0 && (scan == 0 || (limit > 0 && len(b.Events) == limit)) {
		b.Through = l.recs[i-1].id // stopped: what follows was not considered
	}
	return b, l.leaveOnDisk(&b)
}

// sized is the Events of a read that left events follow, with room for
// all it returns when that is known (no predicate), so that a large read
// does not grow them step by step under the lock.
func sized(where selection.Predicate, left, limit int) []Event {
	if !where.Empty() || left == 0 {
		return nil
	}
	if limit > 0 {
		left = min(left, limit)
	}
	return make([]Event, 0, left)
}

// searchRecsAfter is searchAfter over the retained records.
func searchRecsAfter(recs []record, pos uint64) int {
	n := len(recs)
	if n == 0 || recs[n-1].id <= pos {
		return n
	}
	hi, step := n-1, 1 // recs[hi].id > pos
	lo := hi - step
	for lo >= 0 && recs[lo].id > pos {
		hi = lo
		step *= 2
		lo = hi - step
	}
	lo = max(lo, 0)
	return lo + sort.Search(hi-lo, func(i int) bool { return recs[lo+i].id > pos })
}

// distinct returns systems without repeats (a repeated system would be read
// twice), in first-seen order; it copies only when there are repeats.
func distinct(systems []int64) []int64 {
	if len(systems) <= 16 { // the common case: no map
		repeated := false
		for i := 1; i < len(systems) && !repeated; i++ {
			repeated = slices.Contains(systems[:i], systems[i])
		}
		if !repeated {
			return systems
		}
	}
	seen := make(map[int64]struct{}, len(systems))
	for i, s := range systems {
		if _, dup := seen[s]; dup {
			out := slices.Clone(systems[:i])
			for _, s := range systems[i:] {
				if _, dup := seen[s]; !dup {
					seen[s] = struct{}{}
					out = append(out, s)
				}
			}
			return out
		}
		seen[s] = struct{}{}
	}
	return systems
}

// searchAfter returns the index of the first id > pos in ascending ids. It
// gallops back from the end, so a reader near the head, the common case,
// pays O(log new) rather than O(log n).
func searchAfter(ids []uint64, pos uint64) int {
	n := len(ids)
	if n == 0 || ids[n-1] <= pos {
		return n
	}
	hi, step := n-1, 1 // ids[hi] > pos
	lo := hi - step
	for lo >= 0 && ids[lo] > pos {
		hi = lo
		step *= 2
		lo = hi - step
	}
	lo = max(lo, 0)
	return lo + sort.Search(hi-lo, func(i int) bool { return ids[lo+i] > pos })
}

// record returns a retained event (its body nil when it is on disk), or
// nil when it is not retained. Called with mu held.
func (l *Log) record(id uint64) *record {
	if n := len(l.recs); n > 0 && id >= l.recs[0].id {
		// Retained ids are consecutive unless a write failed: first
		// look where id is when none did.
		if i := id - l.recs[0].id; i < uint64(n) && l.recs[i].id == id {
			return &l.recs[i]
		}
	}
	i := searchRecsAfter(l.recs, id-1)
	if i == len(l.recs) || l.recs[i].id != id {
		return nil // not retained: the index and recs disagree, which they never do
	}
	return &l.recs[i]
}

// leaveOnDisk hands the events of b whose killmail is not in memory to
// ReadBodies, with a view of the store taken now, while every event of b is
// still retained. Called with mu held.
func (l *Log) leaveOnDisk(b *Batch) error {
	if l.keep {
		return nil // every body is in memory
	}
	var index []int
	for i := range b.Events {
		if b.Events[i].Killmail == nil {
			index = append(index, i)
		}
	}
	if len(index) == 0 {
		return nil
	}
	from, err := l.store.Bodies()
	if err != nil {
		return fmt.Errorf("read bodies: %w", err)
	}
	b.disk = &diskBodies{from: from, index: index}
	b.log = l
	return nil
}

// Stats reports what the log holds.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Events: len(l.recs), Bytes: l.bytes, Clients: len(l.clients), Oldest: l.oldest(), Head: l.head}
}

// Collect applies retention: it expires idle clients, drops every event that
// all live clients have read (id <= the minimum offset over every live
// client's systems) and that is older than MinRetention, enforces the caps
// and forgets killmail ids older than MaxAge. Its stats count the events
// the caps dropped as appends came in since the last Collect too.
func (l *Log) Collect() (CollectStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return CollectStats{}, ErrClosed
	}
	now := l.cfg.Now().UnixNano()
	var st CollectStats
	idleBefore := now - l.cfg.ClientTTL.Nanoseconds()
	minOffset, any := uint64(0), false
	for id, c := range l.clients {
		if c.lastSeen < idleBefore && c.retention == RetainIdle {
			delete(l.clients, id)
			delete(l.dirty, id)
			l.gone[id] = struct{}{}
			st.ExpiredClients++
			continue
		}
		if c.retention == RetainNothing {
			continue
		}
		for _, o := range c.offsets {
			if !any || o < minOffset {
				minOffset, any = o, true
			}
		}
	}
	if any && l.cfg.MinRetention > 0 {
		// The floor: only events older than MinRetention go for being read.
		floor := now - l.cfg.MinRetention.Nanoseconds()
		n := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].time >= floor })
		if n == 0 {
			any = false
		} else {
			minOffset = min(minOffset, l.recs[n-1].id)
		}
	}
	if any {
		st.Dropped += l.dropThrough(minOffset)
	}
	// Drops by the caps as appends came in, since the last Collect.
	st.Dropped += l.capDropped
	st.DroppedByCaps += l.capDropped
	l.capDropped = 0
	agedBefore := now - l.cfg.MaxAge.Nanoseconds()
	n := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].time >= agedBefore })
	if n > 0 {
		d := l.dropThrough(l.recs[n-1].id)
		st.Dropped += d
		st.DroppedByCaps += d
		st.DroppedByAge += d
	}
	d := l.enforceSizeCaps()
	st.Dropped += d
	st.DroppedByCaps += d
	st.Through = l.oldest() - 1
	if err := l.persistDrop(st.Through); err != nil {
		return st, err
	}
	return st, l.forget(agedBefore)
}

// enforceSizeCaps drops the oldest events until the count and byte caps
// hold. Called with mu held.
func (l *Log) enforceSizeCaps() int {
	n := 0
	for len(l.recs) > l.cfg.MaxEvents || (l.bytes > l.cfg.MaxBytes && len(l.recs) > 0) {
		n += l.dropThrough(l.recs[0].id)
	}
	return n
}

// dropThrough removes retained events with id <= through from memory.
// persistDrop tells the store. Called with mu held.
func (l *Log) dropThrough(through uint64) int {
	n := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].id > through })
	for i := range n {
		r := &l.recs[i]
		si := l.systems[r.system]
		si.ids[0] = 0
		si.ids = si.ids[1:]
		si.dropped = r.id
		l.dropped = r.id
		if len(si.ids) == 0 {
			si.ids = nil
		}
		l.bytes -= r.size
		if r.body != nil && !l.keep {
			l.hotBytes -= r.size
		}
		*r = record{} // release the body
	}
	l.recs = l.recs[n:]
	if l.hot >= 0 {
		l.hot = max(l.hot-n, 0)
	}
	if len(l.recs) == 0 {
		l.recs = nil
	}
	return n
}

func (l *Log) persistDrop(through uint64) error {
	if l.store == nil || through == 0 {
		return nil
	}
	if err := l.store.Drop(through); err != nil {
		return fmt.Errorf("drop through %d: %w", through, err)
	}
	return nil
}

// forget drops dedupe entries older than before whose events are gone.
func (l *Log) forget(before int64) error {
	oldest := l.oldest()
	n := 0
	for n < len(l.seenFIFO) && l.seenFIFO[n].time < before && l.seenFIFO[n].eventID < oldest {
		s := l.seenFIFO[n]
		if l.seen[s.killmailID] == s.eventID {
			delete(l.seen, s.killmailID)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	through := l.seenFIFO[n-1].eventID
	clear(l.seenFIFO[:n])
	l.seenFIFO = l.seenFIFO[n:]
	if l.store != nil {
		if err := l.store.Forget(through); err != nil {
			return fmt.Errorf("forget through %d: %w", through, err)
		}
	}
	return nil
}

// Flush persists client offsets changed since the last Flush. When it
// returns nil they are durable (see Store.SaveClients). It may be called
// from any goroutine; calls run one at a time.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if l.store == nil || (len(l.dirty) == 0 && len(l.gone) == 0) {
		l.mu.Unlock()
		return nil
	}
	changed := make([]ClientState, 0, len(l.dirty))
	for id := range l.dirty {
		c := l.clients[id]
		changed = append(changed, ClientState{ID: id, LastSeen: c.lastSeen, Offsets: maps.Clone(c.offsets), Owner: c.owner})
	}
	deleted := make([]string, 0, len(l.gone))
	for id := range l.gone {
		deleted = append(deleted, id)
	}
	clear(l.dirty)
	clear(l.gone)
	l.mu.Unlock()
	if err := l.store.SaveClients(changed, deleted); err != nil {
		l.mu.Lock()
		for _, c := range changed { // try again next time
			if _, ok := l.clients[c.ID]; ok {
				l.dirty[c.ID] = struct{}{}
			}
		}
		for _, id := range deleted {
			if _, ok := l.clients[id]; !ok {
				l.gone[id] = struct{}{}
			}
		}
		l.mu.Unlock()
		return fmt.Errorf("save clients: %w", err)
	}
	return nil
}

// Close flushes client offsets and closes the store. Later calls return
// ErrClosed.
func (l *Log) Close() error {
	flushErr := l.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	if l.store == nil {
		return flushErr
	}
	if err := l.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return flushErr
}
