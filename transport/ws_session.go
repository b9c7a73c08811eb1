package transport

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/universe"
)

// session runs one websocket connection. An idle connection has one
// goroutine, the reader, blocked in Read. Work (a client frame, a published
// event, a checkpoint, shutdown) kicks a worker goroutine, which owns the
// follows, handles everything pending, writes it as one corked burst, and
// exits. Published events for a session that has nothing else to do go to
// the drain pool instead, which writes them without blocking (see
// drainPool). At most one worker or drainer runs the session at a time;
// pings run on a timer.
type session struct {
	// The fields a drain of a published event reads come first, together,
	// so that it touches few cache lines of a session it has not seen for
	// a while: it writes to thousands of them in turn.
	mu            sync.Mutex // guards started … ended, and the keepalive fields at the end
	started       bool
	working       bool // a worker or drainer runs
	pending       bool // work arrived since the worker last looked
	liveOnly      bool // no client_id follow: live events need no store call
	goingAway     bool
	checkpointDue bool
	ended         bool
	cc            *corkConn
	sub           *actors.Queue
	follows       *wsFollows
	proto         wsProtocol
	pool          *drainPool
	// metrics counts the session's pushes and closes by its protocol.
	metrics *metrics.WS
	names   bool
	// namedKey and namedBuild are the protocol's shared frame with names.
	namedKey   *actors.EncodingKey
	namedBuild func(eventlog.Event) []byte
	buf        []byte
	draining   bool                       // a drainer runs the session: no blocking flush
	corked     int                        // bytes waiting in the cork after the last write
	backlog    []*actors.KillmailInserted // taken, left to the worker by a drainer
	drainBy    time.Time                  // set once the subscription overflowed
	frames     chan wsFrame
	worker     sync.WaitGroup

	ctx    context.Context // canceled by CloseWebsockets
	svc    *actors.Service
	conn   *websocket.Conn
	cfg    WebsocketConfig
	logger *slog.Logger
	owner  string // the read key's owner token ("" without read keys)
	keep   *keepalive
	// render adds names to the events sent while names is set (nil: none).
	render   Renderer
	universe *universe.Universe
	// topics counts, per PubSub topic of the queue, the subscriptions
	// that need it.
	topics map[string]int
	// subscribes paces subscribe frames (a client that loops on them is
	// told to slow down; its connection stays open).
	subscribes *rate.Limiter
	done       chan struct{} // closed when the session ends
	cpTimer    *time.Timer   // armed while a client_id follow exists

	// The keepalive's, guarded by mu.
	nextPing     time.Time // when the keepalive pings next
	pingAwaited  bool      // a ping went out; the peer has not been heard from since
	pingReads    uint64    // the connection's reads when it went out
	pingDeadline time.Time // when a peer not heard from is dropped
}

// wsFrame is a client frame waiting for the worker.
type wsFrame struct {
	typ  websocket.MessageType
	data []byte
}

func newSession(ctx context.Context, svc *actors.Service, u *universe.Universe, conn *websocket.Conn, cc *corkConn, cfg WebsocketConfig, proto wsProtocol, pool *drainPool, keep *keepalive, logger *slog.Logger) *session {
	return &session{
		ctx: ctx, svc: svc, universe: u, conn: conn, cc: cc, cfg: cfg, proto: proto, pool: pool, keep: keep, logger: logger,
		liveOnly:   true,
		metrics:    noWS,
		follows:    newWSFollows(),
		topics:     make(map[string]int),
		subscribes: rate.NewLimiter(cfg.SubscribeRate, cfg.SubscribeBurst),
		frames:     make(chan wsFrame, 4),
		done:       make(chan struct{}),
	}
}

// errClosed ends a session whose connection is already gone.
var errClosed = errors.New("connection closed")

// closeError ends a session with a close frame.
type closeError struct {
	code   websocket.StatusCode
	reason string
}

func (e *closeError) Error() string { return e.reason }

var errGoingAway = &closeError{websocket.StatusGoingAway, "server shutting down"}

// start subscribes the session to PubSub and starts its reader; finished
// runs once the connection is gone and no worker runs.
func (s *session) start(finished func()) {
	sub, err := s.svc.SubscribeQueue(s.ctx, s.cfg.Buffer, s.notified)
	if err != nil {
		ce := &closeError{websocket.StatusTryAgainLater, "store unavailable"}
		if s.ctx.Err() != nil {
			ce = errGoingAway
		}
		go func() {
			defer finished()
			s.stop(ce)
		}()
		return
	}
	s.mu.Lock()
	s.sub, s.started = sub, true
	kick := s.pending
	if s.keep != nil {
		s.nextPing = time.Now().Add(s.pingDelay())
	}
	s.mu.Unlock()
	s.keep.watch(s)
	go s.read(finished)
	if kick {
		s.kick()
	}
}

// read hands client frames to the worker until the connection fails (a
// frame over the read limit makes coder/websocket close with 1009), then
// tears the session down.
func (s *session) read(finished func()) {
	defer func() {
		s.stop(errClosed)
		s.worker.Wait()
		s.keep.unwatch(s)
		if s.cpTimer != nil {
			s.cpTimer.Stop()
		}
		s.sub.Close()
		finished()
	}()
	for {
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			return
		}
		select {
		case s.frames <- wsFrame{typ, data}:
			s.kick()
		case <-s.done:
			return
		}
	}
}

// kick makes sure a worker looks at the session soon.
func (s *session) kick() {
	s.mu.Lock()
	run := s.claimLocked()
	s.mu.Unlock()
	if run {
		go s.work()
	}
}

// claimLocked marks work pending and reports whether the caller is to run
// the session: no worker or drainer runs it, and it is open.
func (s *session) claimLocked() bool {
	s.pending = true
	if s.working || s.ended || !s.started {
		return false
	}
	s.working = true
	s.worker.Add(1)
	return true
}

// notified is the subscription's notify (on PubSub's goroutine): events
// wait. A session with nothing else to do goes to the drain pool; one with
// client frames, a checkpoint, client_id follows (whose offsets move as
// events are written) or a shutdown pending gets its worker.
func (s *session) notified() {
	s.mu.Lock()
	if !s.claimLocked() {
		s.mu.Unlock()
		return
	}
	drain := s.drainableLocked()
	if drain {
		s.pending = false // the drainer takes what waits
	}
	s.mu.Unlock()
	if drain {
		s.pool.submit(s)
		return
	}
	go s.work()
}

// drainableLocked says whether all the session has to do is write live
// events, which a drainer does.
func (s *session) drainableLocked() bool {
	return s.liveOnly && !s.goingAway && !s.checkpointDue && len(s.frames) == 0
}

// drain runs on a drainer: it writes the waiting events with one
// non-blocking write (one per wsFlushAt bytes of a long burst), and never
// waits. Events published while the session waited in line go out with
// the rest; events published during the write put it back in line. What
// the socket does not take at once, a connection whose lock a control
// frame holds, an ended subscription and any other work go on to the
// worker.
func (s *session) drain() {
	var err error
	done := false
	if s.cc.tryCork() { // else a control frame waits on the socket: the worker may wait too
		s.mu.Lock()
		if s.drainableLocked() {
			s.pending = false // what notified it of since it was queued, the Take below gets
		}
		s.mu.Unlock()
		bp := frameBuffers.Get().(*[]byte)
		s.buf = (*bp)[:0]
		s.draining, s.corked = true, 0
		err = s.takeLive()
		s.draining = false
		s.putFrameBuffer(bp)
		if err == nil || errors.Is(err, errHandOver) {
			var werr error
			if done, werr = s.cc.tryUncork(); werr != nil {
				err = werr
			}
		}
	}
	s.mu.Lock()
	if err != nil || !done {
		// The worker flushes what is corked, within the write timeout, and
		// ends the session if the subscription ended or the write failed.
		s.pending = true
	}
	switch {
	case !s.pending || s.ended:
		s.working = false
		s.mu.Unlock()
		s.worker.Done()
		return
	case err == nil && done && s.drainableLocked(): // events came during the write: back in line
		s.pending = false
		s.mu.Unlock()
		s.pool.submit(s)
		return
	}
	s.mu.Unlock()
	go s.work()
}

// goAway asks the session to close with 1001.
func (s *session) goAway() {
	s.mu.Lock()
	s.goingAway = true
	s.mu.Unlock()
	s.kick()
}

// work handles what is pending until nothing is.
func (s *session) work() {
	defer s.worker.Done()
	for {
		s.mu.Lock()
		if !s.pending || s.ended {
			s.working = false
			s.liveOnly = s.follows.clients == 0
			s.mu.Unlock()
			return
		}
		s.pending = false
		goingAway, checkpoint := s.goingAway, s.checkpointDue
		s.checkpointDue = false
		s.mu.Unlock()

		s.cc.cork()
		bp := frameBuffers.Get().(*[]byte)
		s.buf = (*bp)[:0]
		err := s.step(goingAway, checkpoint)
		if ferr := s.cc.uncork(s.writeTimeout()); ferr != nil {
			err = errClosed
		}
		s.putFrameBuffer(bp)
		if err != nil {
			var ce *closeError
			if !errors.As(err, &ce) && !errors.Is(err, errClosed) && s.ctx.Err() != nil {
				err = errGoingAway // a store call cut short by the shutdown
			}
			s.stop(err)
			continue
		}
		if checkpoint {
			s.cpTimer = nil // it fired
		}
		if s.follows.clients > 0 && s.cpTimer == nil {
			s.cpTimer = time.AfterFunc(wsCheckpointInterval, func() {
				s.mu.Lock()
				s.checkpointDue = true
				s.mu.Unlock()
				s.kick()
			})
		}
	}
}

// step handles the client frames that wait, then the published events,
// then a due checkpoint.
func (s *session) step(goingAway, checkpoint bool) error {
	if goingAway {
		return errGoingAway
	}
	for more := true; more; {
		select {
		case f := <-s.frames:
			if err := s.handle(s.proto.parse(f.typ, f.data)); err != nil {
				return err
			}
		default:
			more = false
		}
	}
	if err := s.takeLive(); err != nil {
		return err
	}
	if checkpoint && s.follows.clients > 0 {
		return s.checkpoint()
	}
	return nil
}

// stop ends the session once: with a close frame for a closeError (the
// frame goes behind what was flushed; coder/websocket gives the peer 5s to
// read it and 5s to answer), at once otherwise.
func (s *session) stop(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	close(s.done)
	s.mu.Unlock()
	var ce *closeError
	if errors.As(err, &ce) {
		// The close frame goes behind what is corked (a keepalive ping
		// whose write came up short), which nothing else would flush now.
		_ = s.cc.uncork(s.writeTimeout())
		_ = s.conn.Close(ce.code, ce.reason)
		return
	}
	_ = s.conn.CloseNow()
}
