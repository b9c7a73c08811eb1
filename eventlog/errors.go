package eventlog

import "errors"

var (
	// ErrClosed is returned by every operation on a closed Log.
	ErrClosed = errors.New("eventlog: closed")
	// ErrWrite wraps a failed durable write; the insert was not stored.
	ErrWrite = errors.New("eventlog: write failed")
)
