package actors

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// ReplyAs turns what a request to an actor got back (the reply and the
// future's error, as Future.Result or ReenterAfter hand them over) into a
// reply of type T or the error it stands for: a timeout, a dead letter or a
// *actor.DeadLetterResponse is ErrUnavailable, an error reply (a store that
// crashed answers one) is returned as is, and a reply of another type is
// an error naming it.
func ReplyAs[T any](res any, err error) (T, error) {
	var zero T
	switch {
	case errors.Is(err, actor.ErrTimeout), errors.Is(err, actor.ErrDeadLetter):
		return zero, ErrUnavailable
	case err != nil:
		return zero, err
	}
	switch r := res.(type) {
	case T:
		return r, nil
	case error:
		return zero, r
	case *actor.DeadLetterResponse:
		return zero, ErrUnavailable
	}
	return zero, fmt.Errorf("unexpected reply %T", res)
}
