package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
)

// errHandOver stops a drainer whose long burst the socket did not take at
// once: the worker writes the backlog, flushing as it goes.
var errHandOver = errors.New("burst handed over to the worker")

// takeBuffers hold the events a session takes from its queue while it
// writes them: an idle session keeps none, and a write needs no new slice.
var takeBuffers = sync.Pool{New: func() any { b := make([]*actors.KillmailInserted, 0, 16); return &b }}

// takeBufferKeep is the largest take buffer returned to the pool.
const takeBufferKeep = 1024

// takeLive writes the backlog and the events waiting in the subscription
// queue. When the queue ended it ends the session after them: a slow
// consumer gets what was queued within the grace, then the close frame.
func (s *session) takeLive() error {
	var bp *[]*actors.KillmailInserted
	dst := s.backlog
	if dst == nil {
		bp = takeBuffers.Get().(*[]*actors.KillmailInserted)
		dst = *bp
	}
	evs, ended, err := s.sub.Take(dst)
	s.backlog = nil
	werr := s.writeTaken(evs, ended, err)
	if bp != nil && s.backlog == nil && cap(evs) <= takeBufferKeep { // else the worker holds it, or a burst grew it
		clear(evs)
		*bp = evs[:0]
		takeBuffers.Put(bp)
	}
	return werr
}

// writeTaken writes evs, taken from the queue; ended and err are Take's.
func (s *session) writeTaken(evs []*actors.KillmailInserted, ended bool, err error) error {
	if ended && errors.Is(err, actors.ErrSlowConsumer) && s.drainBy.IsZero() {
		s.drainBy = time.Now().Add(wsCloseGrace)
	}
	for i, ev := range evs {
		if s.draining && s.corked >= wsFlushAt {
			if sent, _ := s.cc.trySend(); !sent { // a failed write sticks: the worker sees it
				s.backlog = evs[i:]
				return errHandOver
			}
			s.corked = 0
		}
		if err := s.live(ev); err != nil {
			return err
		}
	}
	if ended {
		return s.subscriptionEnded()
	}
	return nil
}

func (s *session) subscriptionEnded() error {
	switch err := s.sub.Err(); {
	case errors.Is(err, actors.ErrSlowConsumer):
		s.metrics.SlowConsumerCloses.Inc()
		return &closeError{websocket.StatusPolicyViolation, "slow consumer"}
	case errors.Is(err, actors.ErrRestarted):
		return &closeError{websocket.StatusServiceRestart, "restarting: resume by since"}
	}
	return errGoingAway
}

// live writes a published event unless no subscription wants it or it
// was sent: it goes out once, on the first subscription that wants it
// (see wsFollows.live), and the client ids of the follows that dealt with
// it advance past it.
func (s *session) live(ev *actors.KillmailInserted) error {
	to, dealt := s.follows.live(ev.Event())
	if to != nil {
		if err := s.sendEvent(ev, to); err != nil {
			return err
		}
	}
	for _, f := range dealt {
		if f != nil && f.clientID != "" && to != nil {
			if err := s.advance(f.clientID, []int64{f.system}, ev.EventID); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkpoint moves the offsets of client_id follows to the head: it reads
// the head, waits until PubSub has handed over every event up to it, writes
// them, then advances.
func (s *session) checkpoint() error {
	b, err := s.fetch(&actors.FetchSince{})
	if err != nil {
		return connectionError(err) // else try again at the next tick
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	err = s.sub.Add(ctx) // a round trip through PubSub's mailbox
	cancel()
	if err != nil {
		return nil
	}
	if err := s.takeLive(); err != nil {
		return err
	}
	byClient := make(map[string][]int64)
	for id, f := range s.follows.follows {
		if f.clientID != "" && f.floor < b.Head {
			byClient[f.clientID] = append(byClient[f.clientID], id)
		}
	}
	for id, systems := range byClient {
		if err := s.advance(id, systems, b.Head); err != nil {
			return connectionError(err)
		}
		for _, sys := range systems {
			s.follows.follows[sys].floor = b.Head
		}
	}
	return nil
}

// connectionError keeps the errors that end the session (the connection
// failed) and drops the store's, which a later checkpoint retries.
func connectionError(err error) error {
	if errors.Is(err, errClosed) {
		return err
	}
	return nil
}
