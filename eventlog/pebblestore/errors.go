package pebblestore

import "errors"

var (
	// ErrClosed is returned by every operation on a closed Store.
	ErrClosed = errors.New("pebblestore: closed")
	// ErrNotFound is returned by Body for an event that is not stored.
	ErrNotFound = errors.New("pebblestore: event not found")
	// ErrLocked is returned by Open when another Store holds the directory.
	ErrLocked = errors.New("pebblestore: data dir in use")
	// ErrCorrupt is returned when the directory or a stored value is not what
	// this package wrote.
	ErrCorrupt = errors.New("pebblestore: corrupt data")
	// ErrForeign is returned by Open for a non-empty directory that
	// killfeed did not write: it refuses to put its files among others.
	ErrForeign = errors.New("pebblestore: data dir holds files killfeed did not write")
	// ErrDiskFull is returned by Append when the data dir's filesystem has
	// less than Options.MinFreeBytes free.
	ErrDiskFull = errors.New("pebblestore: disk nearly full")
)
