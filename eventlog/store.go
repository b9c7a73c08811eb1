package eventlog

// Record is one event as a Store persists it.
type Record struct {
	ID         uint64
	SystemID   int64
	KillmailID int64
	// Time is the insert time in Unix nanoseconds.
	Time int64
	// Body is the stored killmail JSON; nil in a Load that leaves bodies on
	// disk.
	Body []byte
	// Size is the body's length in bytes, set when Body is nil.
	Size int64
}

// ClientState is one client's durable state.
type ClientState struct {
	ID string
	// LastSeen is in Unix nanoseconds.
	LastSeen int64
	// Offsets maps system id to the last event id the client has seen there.
	Offsets map[int64]uint64
	// Owner is the read key the client is bound to (a digest, see
	// Log.Claim); "" when it is not bound.
	Owner string
}

// Loaded is what a Store hands back at Open.
type Loaded struct {
	// NextID is greater than every id ever appended or dropped (>= 1), so
	// that an id that was acknowledged is never handed out again, even when
	// all its events were collected.
	NextID uint64
	// Records are the retained events, ascending by ID. Body may be nil
	// when the Store serves bodies through Bodies.
	Records []Record
	// Forgotten are the dedupe entries of events whose bodies are gone
	// but whose killmail ids are still remembered, ascending by ID (Body nil).
	Forgotten []Record
	Clients   []ClientState
	Cursors   []Cursor
}

// Store is a durable backend under a Log. The Log serialises calls that
// change state, except Append, which it calls concurrently so that the Store
// can share one sync between writers (group commit).
type Store interface {
	// Load reads everything persisted.
	Load() (Loaded, error)
	// Append durably stores records and cursors in one atomic write and
	// returns once it is synced.
	Append(recs []Record, cursors []Cursor) error
	// Bodies returns a view of the stored bodies as they are now: a Drop
	// after it does not reach what it reads. The Log takes one under its
	// lock and reads through it after releasing the lock.
	Bodies() (Bodies, error)
	// KeepsBodies says whether the Log should drop bodies from memory after
	// Append and read them through Bodies.
	KeepsBodies() bool
	// Drop deletes the events (bodies) with id <= through, and remembers
	// that ids <= through are used.
	Drop(through uint64) error
	// Forget deletes the dedupe entries of events with id <= through.
	Forget(through uint64) error
	// SaveClients persists changed clients and deletes expired ones. When it
	// returns nil the change is durable: it survives the process being
	// killed (for a disk store, it is synced).
	SaveClients(changed []ClientState, deleted []string) error
	// Close flushes and closes the store.
	Close() error
}

// Bodies reads the killmails of retained events from a Store, as they were
// when it was taken. It is used by one goroutine at a time.
type Bodies interface {
	// Body returns the killmail of event id, which was retained when the
	// view was taken.
	Body(id uint64) ([]byte, error)
	// Close releases the view.
	Close() error
}
