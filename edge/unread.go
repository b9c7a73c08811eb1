package edge

import (
	"math/rand/v2"
	"time"

	"github.com/killfeed/killfeed/eventlog"
)

// unreads holds, on the core, the answers that advanced a client's
// offsets, for a while, by token: an edge that could not deliver one sends
// edgepb.Unread with its token and the offsets go back, as a single node
// does with Batch.Unread. Only the endpoint actor uses it.
type unreads struct {
	ttl  time.Duration
	max  int
	next uint64
	held map[uint64]*eventlog.Batch
	// order is the held tokens with when they were held, oldest first.
	order []heldToken
	now   func() time.Time
}

type heldToken struct {
	token uint64
	at    time.Time
}

func newUnreads(hold time.Duration, max int) *unreads {
	// Tokens start at random so that one from an earlier incarnation of
	// the core names nothing in this one.
	return &unreads{ttl: hold, max: max, next: rand.Uint64(), held: make(map[uint64]*eventlog.Batch), now: time.Now}
}

// hold keeps what puts b's offsets back (not its events) and returns its
// token, never 0.
func (u *unreads) hold(b eventlog.Batch) uint64 {
	now := u.now()
	u.expire(now)
	u.next++
	if u.next == 0 {
		u.next++
	}
	kept := b
	kept.Events = nil
	u.held[u.next] = &kept
	u.order = append(u.order, heldToken{u.next, now})
	return u.next
}

// expire lets go of tokens held longer than the hold, and of the oldest
// past max.
func (u *unreads) expire(now time.Time) {
	n := 0
	for n < len(u.order) && (now.Sub(u.order[n].at) > u.ttl || len(u.order)-n >= u.max) {
		delete(u.held, u.order[n].token)
		n++
	}
	if n > 0 {
		u.order = u.order[n:]
	}
}

// unread puts back the offsets of the answer named token, if still held.
func (u *unreads) unread(token uint64) {
	if b, ok := u.held[token]; ok {
		delete(u.held, token)
		b.Unread()
	}
}
