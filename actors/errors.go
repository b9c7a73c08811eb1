package actors

import "errors"

var (
	// ErrUnavailable means the store did not answer within the deadline.
	ErrUnavailable = errors.New("store unavailable")
	// ErrCrashed means the store actor failed while handling the request;
	// it restarts, and the request may be retried.
	ErrCrashed = errors.New("store failed while handling the request")
	// ErrSlowConsumer closes a subscription whose buffer overflowed.
	ErrSlowConsumer = errors.New("slow consumer")
	// ErrStopped is returned after the service stopped.
	ErrStopped = errors.New("service stopped")
	// ErrRestarted closes the subscriptions of a PubSub actor that crashed
	// and was restarted empty: subscribe again (resume by event_id).
	ErrRestarted = errors.New("pubsub restarted")
)
