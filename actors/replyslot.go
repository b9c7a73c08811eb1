package actors

import (
	"sync"
	"sync/atomic"
)

// replySlot is where the store answers a fetch of a Service over a local
// store: a channel in place of a Proto.Actor future, which would register
// a PID of its own and start a timer per request. Exactly one of the
// store's answer and the asker giving up at its deadline wins; an answer
// that loses is put back (Batch.Unread), so that no offsets move for an
// answer nobody receives.
type replySlot struct {
	ch    chan *FetchResult
	state atomic.Int32
}

// The states of a replySlot.
const (
	slotWaiting int32 = iota
	slotAnswered
	slotAbandoned
)

var replySlots = sync.Pool{New: func() any { return &replySlot{ch: make(chan *FetchResult, 1)} }}

// answer hands res to the asker, or puts it back if the asker gave up.
func (r *replySlot) answer(res *FetchResult) {
	if r.state.CompareAndSwap(slotWaiting, slotAnswered) {
		r.ch <- res
		return
	}
	res.Batch.Unread()
}

// abandon gives up waiting; false when the answer came first (it is then
// in ch).
func (r *replySlot) abandon() bool { return r.state.CompareAndSwap(slotWaiting, slotAbandoned) }

// replyOf is the reply slot a fetch message carries, nil when its asker
// waits on a future.
func replyOf(msg any) *replySlot {
	switch m := msg.(type) {
	case *FetchForClient:
		return m.reply
	case *FetchOneEvent:
		return m.reply
	}
	return nil
}
