package names

import "errors"

var (
	// ErrBackingOff is returned while the client waits out ESI's error
	// limit, a 420 or 429, or backoff after 5xx and network errors: no
	// request is made.
	ErrBackingOff = errors.New("esi: backing off")
	// ErrUnexpected is an ESI answer that is not what was asked for.
	ErrUnexpected = errors.New("esi: unexpected answer")
)
