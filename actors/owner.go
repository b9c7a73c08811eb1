package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// refused answers a read that must not be made: its asker gave up at
// deadline (zero: none), or clientID is bound to another owner than owner
// (see eventlog.Log.Claim).
func (a *killmailStore) refused(ctx actor.Context, clientID, owner string, deadline time.Time) bool {
	if expired(deadline) {
		respond(ctx, &FetchResult{Err: ErrUnavailable})
		return true
	}
	if owner == "" {
		return false
	}
	if err := a.log.Claim(clientID, owner); err != nil {
		respond(ctx, &FetchResult{Err: err})
		return true
	}
	return false
}
