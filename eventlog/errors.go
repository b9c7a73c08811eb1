package eventlog

import "errors"

var (
	// ErrClosed is returned by every operation on a closed Log.
	ErrClosed = errors.New("eventlog: closed")
	// ErrWrite wraps a failed durable write; the insert was not stored.
	ErrWrite = errors.New("eventlog: write failed")
	// ErrTooManyClients is returned by a read that would create a client
	// while Config.MaxClients clients are live.
	ErrTooManyClients = errors.New("eventlog: too many live clients")
	// ErrNotOwner is returned by Claim for a client bound to another owner.
	ErrNotOwner = errors.New("eventlog: client bound to another owner")
)
