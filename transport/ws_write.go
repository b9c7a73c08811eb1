package transport

import (
	"sync"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

// writeTimeout bounds a flush: the write timeout, or what is left of the
// grace after an overflow.
func (s *session) writeTimeout() time.Duration {
	if s.drainBy.IsZero() {
		return s.cfg.WriteTimeout
	}
	return min(s.cfg.WriteTimeout, time.Until(s.drainBy))
}

// write queues one text frame in the cork. A failed write closes the
// connection.
func (s *session) write(frame []byte) error {
	if len(frame) == 0 {
		return nil
	}
	return s.wrote(s.cc.writeFrame(frame))
}

// wrote notes how many bytes the cork holds after a write, flushing when a
// long burst has gathered (but not on a drainer, which must not block).
func (s *session) wrote(n int, err error) error {
	if err != nil {
		return errClosed
	}
	if s.corked = n; !s.draining && n >= wsFlushAt {
		return s.flush()
	}
	return nil
}

// flush sends what the cork holds, so that it is on the socket.
func (s *session) flush() error {
	if s.cc.flush(s.writeTimeout()) != nil {
		return errClosed
	}
	return nil
}

// frameBuffers hold the frames a worker builds; an idle session keeps none.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// putFrameBuffer returns the worker's frame buffer to the pool, unless a
// huge killmail grew it.
func (s *session) putFrameBuffer(bp *[]byte) {
	if s.buf != nil {
		*bp = s.buf[:0]
		frameBuffers.Put(bp)
	}
	s.buf = nil
}

// send writes a frame built in s.buf and keeps the buffer for the next one
// (unless a huge killmail grew it).
func (s *session) send(frame []byte) error {
	if cap(frame) <= 64<<10 {
		s.buf = frame[:0]
	} else {
		s.buf = nil
	}
	return s.write(frame)
}

// sendEvent writes a live event: framed once for every connection when
// the protocol allows it, else framed here for the join.
func (s *session) sendEvent(ev *actors.KillmailInserted, j *wsJoin) error {
	s.metrics.Pushed.Inc()
	if key, frame := s.proto.eventFrame(); frame != nil {
		if s.names {
			if s.namedKey == nil {
				s.namedKey, s.namedBuild = namedFrame(key, frame, s.render)
			}
			key, frame = s.namedKey, s.namedBuild
		}
		return s.wrote(s.cc.writeFramed(ev.Encoded(key, frame)))
	}
	return s.send(s.proto.event(s.buf[:0], j, s.named(ev.Event())))
}

// named returns ev with names added when the connection asked for them.
func (s *session) named(ev eventlog.Event) eventlog.Event {
	if s.names {
		ev.Killmail = render(s.render, ev)
	}
	return ev
}
