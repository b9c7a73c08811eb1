package webhook

import "errors"

var (
	// ErrConfig wraps every error in a webhooks file.
	ErrConfig = errors.New("webhooks file")
	// ErrRejected is a receiver's answer that is neither a success nor
	// worth retrying forever (a 4xx other than 429, a redirect).
	ErrRejected = errors.New("rejected by the receiver")
	// ErrRateLimited is a 429 answer.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable is a receiver that did not answer, answered 5xx or
	// timed out.
	ErrUnavailable = errors.New("receiver unavailable")
)
