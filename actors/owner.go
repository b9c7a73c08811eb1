package actors

import "github.com/asynkron/protoactor-go/actor"

// refused claims clientID for owner (see eventlog.Log.Claim) and, when the
// claim fails, answers the fetch with the error.
func (a *killmailStore) refused(ctx actor.Context, clientID, owner string) bool {
	if owner == "" {
		return false
	}
	if err := a.log.Claim(clientID, owner); err != nil {
		ctx.Respond(&FetchResult{Err: err})
		return true
	}
	return false
}
