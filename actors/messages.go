package actors

import (
	"cmp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// Commands and queries for KillmailStore. Request-reply ones are answered with
// the …Result named beside them.

// InsertKillmail stores killmails (deduplicated by killmail id) and, when
// Cursor is set, an upstream cursor in the same write. Reply: *InsertKillmailResult.
type InsertKillmail struct {
	Killmails []killmail.Killmail
	Cursor    *eventlog.Cursor
	// Source names the ingest path for the metrics (metrics.SourceHTTP,
	// …); "" counts as metrics.SourceOther.
	Source string
}

// InsertKillmailResult answers InsertKillmail, one result per killmail.
type InsertKillmailResult struct {
	Results []eventlog.AppendResult
	Err     error
}

// FetchForClient reads up to Limit events (0: all) of Selection the client
// has not seen and advances its offsets past what the read considered.
// Reply: *FetchResult.
type FetchForClient struct {
	ClientID  string
	Selection selection.Selection
	Limit     int
	// Deadline, when set, is when the asker stops waiting: a fetch that
	// reaches the store later is not made, and one whose answer is ready
	// later is put back (Batch.Unread), so that no client's offsets move
	// for an answer nobody receives. Service.Fetch sets it.
	Deadline time.Time
	// Owner, when set, binds ClientID to it or refuses the read with
	// eventlog.ErrNotOwner (see eventlog.Log.Claim).
	Owner string
	// reply, when set, is where the store answers instead of the sender.
	reply *replySlot
}

// FetchOneEvent reads the oldest event of Selection the client has not
// seen and advances its offsets past it. Reply: *FetchResult.
type FetchOneEvent struct {
	ClientID  string
	Selection selection.Selection
	// NewAtHead starts a client that does not exist yet at the head instead
	// of the oldest retained event (a new RedisQ queue).
	NewAtHead bool
	// Deadline is as in FetchForClient.
	Deadline time.Time
	// Owner is as in FetchForClient.
	Owner string
	// reply is as in FetchForClient.
	reply *replySlot
}

// PeekForClient reads like FetchForClient without advancing. Reply: *FetchResult.
type PeekForClient struct {
	ClientID  string
	Selection selection.Selection
	Limit     int
	// Owner is as in FetchForClient.
	Owner string
}

// FetchSince reads retained events of Selection after event id After.
// Reply: *FetchResult.
type FetchSince struct {
	Selection selection.Selection
	After     uint64
	Limit     int
}

// FetchResult answers the fetch messages.
type FetchResult struct {
	Batch eventlog.Batch
	Err   error
}

// AdvanceClient moves a client's offsets for Systems forward to Through.
// Reply: *AdvanceClientResult.
type AdvanceClient struct {
	ClientID string
	Systems  []int64
	Through  uint64
}

// AdvanceClientResult answers AdvanceClient.
type AdvanceClientResult struct{ Err error }

// CollectGarbage applies retention. Fire-and-forget; a request gets
// *CollectGarbageResult.
type CollectGarbage struct{}

// CollectGarbageResult answers a CollectGarbage sent as a request.
type CollectGarbageResult struct {
	Stats eventlog.CollectStats
	Err   error
}

// FlushOffsets persists changed client offsets. The scheduler sends it
// fire-and-forget; a request gets a FlushOffsetsResult once they are durable.
type FlushOffsets struct{}

// FlushOffsetsResult answers a FlushOffsets request.
type FlushOffsetsResult struct{ Err error }

// Crash makes the store or the PubSub actor panic, as a bug would; for
// fault-injection specs. A request to the store gets an error reply, like
// any request in flight during a panic.
type Crash struct{}

// Stall makes the store actor sleep in Receive for D, as a store stuck on a
// slow disk would; for fault-injection specs. Fire-and-forget.
type Stall struct{ D time.Duration }

// Events and PubSub messages.

// KillmailInserted is published on topic "system:<SystemID>" once an event
// is visible in the log. Subscribers receive events in EventID order.
type KillmailInserted struct {
	EventID  uint64
	SystemID int64
	Killmail []byte
	// Facts are the killmail's facts (nil: not extracted yet; see
	// FactsOf).
	Facts *selection.Facts
	// Named and NamedPartial are as in eventlog.Event (set on an edge).
	Named        []byte
	NamedPartial bool

	encoded [encodedKeys]atomic.Pointer[encoding] // see Encoded
}

// encodedKeys is how many encodings of one event are shared: a protocol
// with and without names, for a few protocols.
const encodedKeys = 4

// EncodingKey names one way of encoding events for Encoded; its holder
// decides what the bytes are.
type EncodingKey struct{ _ byte } // not empty: two keys never share an address

type encoding struct {
	key *EncodingKey
	b   []byte
}

// Encoded returns the event as build encodes it. The first few keys
// asked for (encodedKeys) are each built once and shared by every later
// caller with that key: a transport that sends a busy system's event to
// thousands of connections frames it once. Every caller with one key must
// pass a build that gives the same bytes. Any other key (or nil) gets a
// build of its own each time, so no caller ever sees another's encoding.
// Two callers racing may both build; one result is kept.
func (k *KillmailInserted) Encoded(key *EncodingKey, build func(eventlog.Event) []byte) []byte {
	if key == nil {
		return build(k.Event())
	}
	var mine *encoding // built here, not yet kept
	for i := range k.encoded {
		slot := &k.encoded[i]
		e := slot.Load()
		if e == nil {
			if mine == nil {
				mine = &encoding{key: key, b: build(k.Event())}
			}
			if slot.CompareAndSwap(nil, mine) {
				return mine.b
			}
			e = slot.Load()
		}
		if e.key == key {
			return e.b
		}
	}
	if mine != nil {
		return mine.b
	}
	return build(k.Event())
}

// Event returns the inserted killmail as an eventlog.Event.
func (k *KillmailInserted) Event() eventlog.Event {
	return eventlog.Event{ID: k.EventID, SystemID: k.SystemID, Killmail: k.Killmail, Facts: k.Facts,
		Named: k.Named, NamedPartial: k.NamedPartial}
}

// inserted is the message of a visible event.
func inserted(ev eventlog.Event) *KillmailInserted {
	f := ev.Facts
	if f == nil {
		f = selection.Extract(ev.Killmail) // an event from an upstream relay
	}
	return &KillmailInserted{EventID: ev.ID, SystemID: ev.SystemID, Killmail: ev.Killmail, Facts: f,
		Named: ev.Named, NamedPartial: ev.NamedPartial}
}

// Subscribe adds topics to a subscriber (created when new). Reply: *Subscribed.
type Subscribe struct {
	Subscriber Subscriber
	Topics     []string
}

// Subscribed acknowledges Subscribe: every event published after it reaches
// the subscriber.
type Subscribed struct{}

// Unsubscribe removes topics from a subscriber, or the subscriber itself
// when Topics is empty. Reply: *Unsubscribed.
type Unsubscribe struct {
	Subscriber Subscriber
	Topics     []string
}

// Unsubscribed acknowledges Unsubscribe.
type Unsubscribed struct{}

// outbox carries newly visible events from the log to PubSub, in order.
// The log adds to it; one publishWake message wakes PubSub, which takes
// everything that gathered by then. While PubSub is busy fanning out one
// event the next ones wait here, and each subscriber then gets them in one
// hand-over: a burst costs a websocket one wake-up and one write, not one
// per event. When PubSub keeps up, an event is taken alone, at once.
type outbox struct {
	mu     sync.Mutex
	events []eventlog.Event
	woken  bool
	// overflowed says events were dropped because PubSub fell more than
	// outboxMax behind (or is gone): every subscriber has a gap.
	overflowed bool
	limit      int // 0 means outboxMax
}

// outboxMax bounds the events waiting for PubSub.
const outboxMax = 1 << 20

// add appends evs and calls wake unless a wake-up is already on its way.
func (b *outbox) add(evs []eventlog.Event, wake func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.events)+len(evs) > cmp.Or(b.limit, outboxMax) {
		b.events, b.overflowed = nil, true
	}
	b.events = append(b.events, evs...)
	if !b.woken {
		b.woken = true
		wake()
	}
}

// take empties the outbox; overflowed says events were dropped before
// these.
func (b *outbox) take() (evs []eventlog.Event, overflowed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs, overflowed = b.events, b.overflowed
	b.events, b.woken, b.overflowed = nil, false, false
	return evs, overflowed
}

// publishWake tells PubSub that box holds events.
type publishWake struct{ box *outbox }
