package eventlog

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/killfeed/killfeed/selection"
)

// Defaults for a zero Config.
const (
	DefaultMaxEvents = 1_000_000
	DefaultMaxBytes  = 2 << 30
	DefaultMaxAge    = 72 * time.Hour
	DefaultClientTTL = 24 * time.Hour
	DefaultHotBytes  = 256 << 20
	DefaultMaxScan   = 10_000
)

// Config bounds the log. The zero value means the defaults above.
type Config struct {
	// MaxEvents caps the number of retained events; 0 means DefaultMaxEvents.
	MaxEvents int
	// MaxBytes caps the killmail bytes retained; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxAge drops events older than this (by insert time) and is how long
	// killmail ids are remembered for dedupe; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// ClientTTL expires clients idle this long; 0 means DefaultClientTTL.
	ClientTTL time.Duration
	// MinRetention keeps events younger than this (by insert time) even
	// when every live client has read them, so that a new client can
	// backfill; the caps and MaxAge still apply. 0 means none.
	MinRetention time.Duration
	// HotBytes is how many bytes of the newest killmails a Log over a Store
	// that serves bodies keeps in memory, so that readers near the head do
	// not touch the disk; 0 means DefaultHotBytes.
	HotBytes int64
	// MaxClients caps the live clients: a read that would create a client
	// past it fails with ErrTooManyClients, while existing clients keep
	// working. 0 means no cap.
	MaxClients int
	// MaxScan is how many events one read with a predicate considers at
	// most past its position; a read that stops there says Batch.More. 0
	// means DefaultMaxScan.
	MaxScan int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.ClientTTL <= 0 {
		c.ClientTTL = DefaultClientTTL
	}
	if c.HotBytes <= 0 {
		c.HotBytes = DefaultHotBytes
	}
	if c.MaxScan <= 0 {
		c.MaxScan = DefaultMaxScan
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// AllSystems is the pseudo-system that stands for every system, known or
// not. In the systems of a read it means "every event": the read walks the
// whole log once (other systems in the same set are ignored, so nothing is
// returned twice), and a fetch advances the client's AllSystems offset, which
// takes part in GC like any other. Missed is set for it when any event after
// its position was dropped. No killmail has system id 0.
const AllSystems = selection.AllSystems

// Event is one stored killmail with its place in the log.
type Event struct {
	ID       uint64
	SystemID int64
	// Killmail is the stored compact JSON; it is shared, never modify it.
	Killmail []byte
	// Facts are the killmail's facts, shared; nil for an event built
	// elsewhere than the log (selection.Extract makes them).
	Facts *selection.Facts
	// Named, when set, is the killmail with the names beside its ids as the
	// node that owns the log rendered it: an edge gets it from its core
	// with each event. nil means a reader renders names itself.
	Named []byte
	// NamedPartial says Named lacked names that were not known yet.
	NamedPartial bool
}

// AppendJSON appends {"event_id":…,"system_id":…,"killmail":…} to dst,
// writing the killmail bytes verbatim.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = strconv.AppendUint(dst, e.ID, 10)
	dst = append(dst, `,"system_id":`...)
	dst = strconv.AppendInt(dst, e.SystemID, 10)
	dst = append(dst, `,"killmail":`...)
	dst = append(dst, e.Killmail...)
	return append(dst, '}')
}

// Batch is the answer to a read. A Log over a Store that keeps bodies on
// disk hands the killmails it does not hold in memory to ReadBodies, which
// the reader calls after the read: the disk is read outside the Log's lock,
// and off the goroutine that serialises reads, such as the KillmailStore
// actor, so that a reader catching up from far back holds up no insert and
// no other reader.
type Batch struct {
	// Events are ascending by ID.
	Events []Event
	// Missed is true when events the reader had not read were dropped by
	// retention caps before it read them.
	Missed bool
	// Oldest is the oldest retained event id (Head+1 when none is retained).
	Oldest uint64
	// Head is the newest event id visible when the read was made.
	Head uint64
	// More says the read stopped (at its limit, or at the scan bound of
	// a read with a predicate) before the newest event of its systems.
	More bool
	// Through is the newest event id the read considered, matching or
	// not: Head, unless the read stopped at its limit or scan bound. A Fetch advances the offsets to it; the next
	// page of a Since starts after it.
	Through uint64

	disk *diskBodies // the killmails ReadBodies reads; nil when none
	// undo puts the offsets a Fetch advanced back; nil for other reads and
	// for a Fetch that returned nothing.
	undo undoer
	// where decides after ReadBodies on the events whose facts were not
	// known (Facts nil); log keeps the facts ReadBodies extracts.
	where selection.Predicate
	log   *Log
}

// undoer puts a read's offsets back (see Batch.Unread).
type undoer interface{ run() }

// SetUnread makes Unread call f, once, instead of anything this Log
// would do: for a batch read on another node, whose offsets live there
// (an edge relays its core's answer, and f asks the core to put them
// back). nil makes Unread do nothing.
func (b *Batch) SetUnread(f func()) {
	b.undo = nil
	if f != nil {
		b.undo = unreadFunc(f)
	}
}

type unreadFunc func()

func (f unreadFunc) run() { f() }

// Unreadable says whether Unread would put offsets back: the batch came
// from a Fetch that advanced them.
func (b *Batch) Unreadable() bool { return b.undo != nil }

// Unread puts back the client offsets that the Fetch which returned b
// advanced, except those a later read moved on since, so that the client
// reads b's events again. A server calls it when b never reached its
// client (the response could not be written). Only the first call does
// anything; for a batch from Peek or Since, or one with no events, it does
// nothing.
func (b *Batch) Unread() {
	if u := b.undo; u != nil {
		b.undo = nil
		u.run()
	}
}

// diskBodies are the killmails of a batch left on disk.
type diskBodies struct {
	from  Bodies
	index []int // into Events
}

// OnDisk says whether the batch has killmails for ReadBodies to read.
func (b *Batch) OnDisk() bool { return b.disk != nil }

// bodyChunk is how many killmails ReadBodies reads before it extracts
// their facts and keeps them in the log, under one lock.
const bodyChunk = 16

// ReadBodies reads the killmails the read left on disk, through a view of
// the store taken with the read, so that retention running meanwhile does
// not take them away. Until it returns nil those events' Killmail is nil;
// for a batch read from memory it does nothing. When a body cannot be read,
// the client offsets a Fetch advanced go back where they were (unless a
// later read moved them on), so that the client reads the batch again.
func (b *Batch) ReadBodies() error { return b.ReadBodiesPaced(nil) }

// ReadBodiesPaced is ReadBodies calling pause (when not nil) before each
// killmail it reads: a reader that waits there leaves the CPU to others.
// The facts of the killmails read are extracted, and kept in the log, in
// chunks of bodyChunk, so that no step of a large read holds the log's
// lock longer than one chunk.
func (b *Batch) ReadBodiesPaced(pause func()) error {
	d := b.disk
	if d == nil {
		return nil
	}
	b.disk = nil
	var err error
	var extracted []Event // the chunk's events whose facts were extracted
	for start := 0; start < len(d.index) && err == nil; start += bodyChunk {
		extracted = extracted[:0]
		chunk := d.index[start:min(start+bodyChunk, len(d.index))]
		if b.log != nil && slices.ContainsFunc(chunk, func(i int) bool { return b.Events[i].Facts == nil }) {
			b.log.knownFacts(b.Events, chunk)
		}
		for _, i := range chunk {
			if pause != nil {
				pause()
			}
			ev := &b.Events[i]
			if ev.Killmail, err = d.from.Body(ev.ID); err != nil {
				err = fmt.Errorf("read event %d: %w", ev.ID, err)
				break
			}
			if ev.Facts == nil && b.log != nil {
				ev.Facts = selection.Extract(ev.Killmail)
				extracted = append(extracted, *ev)
			}
		}
		if err == nil && b.log != nil {
			b.log.setFacts(extracted)
		}
	}
	if err = errors.Join(err, d.from.Close()); err != nil {
		b.Unread()
		return err
	}
	b.decide()
	return nil
}

// decide drops the events the read's predicate does not match, now that
// ReadBodies knows the facts of every event.
func (b *Batch) decide() {
	if b.log == nil {
		return
	}
	kept := b.Events[:0]
	for _, ev := range b.Events {
		if b.where.Match(ev.Facts) {
			kept = append(kept, ev)
		}
	}
	clear(b.Events[len(kept):])
	b.Events = kept
	b.log = nil
}

// AppendResult is the outcome of one appended killmail.
type AppendResult struct {
	EventID   uint64
	Duplicate bool
}

// Cursor is a named position of an upstream source (e.g. the R2Z2
// sequence), stored in the same write as the killmails it produced.
type Cursor struct {
	Name  string
	Value uint64
}

// Stats describes what the log holds.
type Stats struct {
	Events  int
	Bytes   int64
	Clients int
	Oldest  uint64
	Head    uint64
}

// CollectStats says what one Collect removed.
type CollectStats struct {
	Dropped        int    // events deleted, by this Collect and by the caps as appends came in since the last one
	DroppedByCaps  int    // of which dropped by caps (count, bytes, age)
	DroppedByAge   int    // of DroppedByCaps, dropped for being older than MaxAge
	Through        uint64 // every event id <= Through is gone
	ExpiredClients int
}
