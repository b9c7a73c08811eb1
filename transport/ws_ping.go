package transport

import (
	"math/rand/v2"
	"time"
)

// pingDelay is the ping interval give or take 10 %: connections opened
// together (every client reconnecting after a restart) do not all ping at
// once, then and every interval after.
func (s *session) pingDelay() time.Duration {
	d := s.cfg.PingInterval
	return d - d/10 + rand.N(d/5+1)
}

// keepalive runs on the hub's keepalive tick: it drops the peer when
// nothing (its pong or any other frame) arrived from it by the deadline of
// the last ping, and says whether the next ping is due.
func (s *session) keepalive(now time.Time) (due bool) {
	reads := s.cc.reads.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return false
	case s.pingAwaited && reads != s.pingReads:
		s.pingAwaited = false // heard from
	case s.pingAwaited && now.After(s.pingDeadline):
		s.metrics.KeepaliveDrops.Inc()
		go s.stop(errClosed) // closing may flush for a moment: not on the shared loop
		return false
	}
	return !s.pingAwaited && !now.Before(s.nextPing)
}

// ping sends the keepalive ping that keepalive found due. It holds s.mu
// while it pings (the ping never waits): no ping is corked once the session
// ended, so stop finds in the cork only what came before its close frame.
func (s *session) ping(timeout time.Duration) {
	reads := s.cc.reads.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.pingAwaited {
		return
	}
	sent, done, err := s.cc.ping()
	switch {
	case err != nil:
		go s.stop(errClosed)
		return
	case !sent:
		return // the connection is busy: at the next tick
	case !done && s.claimLocked():
		go s.work() // it flushes the ping, within the write timeout
	}
	now := time.Now()
	s.pingAwaited, s.pingReads, s.pingDeadline = true, reads, now.Add(timeout)
	s.nextPing = now.Add(s.pingDelay())
}
