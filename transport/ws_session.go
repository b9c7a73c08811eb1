package transport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/metrics"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// wsProtocol is a wire protocol over a session: native JSON or Phoenix
// Channels v2. Its methods append one frame to dst (or none).
type wsProtocol interface {
	// parse turns a client frame into a command.
	parse(typ websocket.MessageType, data []byte) wsCommand
	// subscribed acknowledges a subscribe before its replay.
	subscribed(dst []byte, cmd *wsCommand, head uint64, missed bool) []byte
	// failed answers a command the session could not carry out.
	failed(dst []byte, cmd *wsCommand, msg string) []byte
	// unsubscribed acknowledges an unsubscribe.
	unsubscribed(dst []byte, cmd *wsCommand) []byte
	// left tells the client a joined topic was replaced by a later join of
	// the same topic (Phoenix's phx_close).
	left(dst []byte, j *wsJoin) []byte
	// event pushes one event of a joined topic.
	event(dst []byte, j *wsJoin, ev eventlog.Event) []byte
	// eventFrame, when not nil, frames an event the same for every join
	// and connection: a live event is then framed once, for all of them
	// (actors.KillmailInserted.Encoded, under the key).
	eventFrame() (*actors.EncodingKey, func(eventlog.Event) []byte)
}

type wsOp uint8

const (
	opReply       wsOp = iota // write reply as is
	opSubscribe               // follow topics, from since / client_id / the head
	opUnsubscribe             // stop following topics
)

// wsCommand is a parsed client frame.
type wsCommand struct {
	op    wsOp
	reply []byte
	// topics are what to follow: "system:<id>", "constellation:<id>",
	// "region:<id>" or "all" (see topicSystems).
	topics []string
	// sel is the native frame's selection, echoed in its acknowledgement.
	sel      topicSel
	since    uint64
	hasSince bool
	clientID string
	// Phoenix addressing, echoed verbatim (raw JSON).
	joinRef, ref json.RawMessage
	// afterReply is written after the acknowledgement (Phoenix phx_close).
	afterReply []byte
}

// wsJoin is one followed topic: a system, constellation, region or all.
type wsJoin struct {
	topic    string
	systems  []int64         // expanded; [eventlog.AllSystems] for all
	clientID string          // the client_id it was joined with, if any
	joinRef  json.RawMessage // Phoenix join_ref
}

// wsFollow is the state of one followed system (eventlog.AllSystems for
// all). A system in several joined topics is followed once, so that an
// event is sent once per connection.
type wsFollow struct {
	system int64
	// Every event of the system with start < id <= floor was sent; events
	// at or below floor are not sent again (live ones are skipped).
	start, floor uint64
	clientID     string    // advanced as events are written, when set
	joins        []*wsJoin // the topics holding it; events go out on the first (its system topic, when joined)
}

// session runs one websocket connection. An idle connection has one
// goroutine, the reader, blocked in Read. Work (a client frame, a published
// event, a checkpoint, shutdown) kicks a worker goroutine, which owns the
// follows, handles everything pending, writes it as one corked burst, and
// exits. Published events for a session that has nothing else to do go to
// the drain pool instead, which writes them without blocking (see
// drainPool). At most one worker or drainer runs the session at a time;
// pings run on a timer.
type session struct {
	ctx    context.Context // canceled by CloseWebsockets
	svc    *actors.Service
	conn   *websocket.Conn
	cc     *corkConn
	cfg    WebsocketConfig
	proto  wsProtocol
	logger *slog.Logger
	owner  string // the read key's owner token ("" without read keys)
	pool   *drainPool
	keep   *keepalive
	// metrics counts the session's pushes and closes by its protocol.
	metrics *metrics.WS

	universe *universe.Universe
	sub      *actors.Queue
	joins    map[string]*wsJoin
	follows  map[int64]*wsFollow
	all      *wsFollow // follows[eventlog.AllSystems], at hand for every live event
	last     *wsFollow // the follow of the last live event's system: a fight's events look it up once
	clients  int       // follows with a client id
	buf      []byte
	draining bool                       // a drainer runs the session: no blocking flush
	corked   int                        // bytes waiting in the cork after the last write
	backlog  []*actors.KillmailInserted // taken, left to the worker by a drainer
	drainBy  time.Time                  // set once the subscription overflowed
	frames   chan wsFrame
	done     chan struct{} // closed when the session ends
	cpTimer  *time.Timer   // armed while a client_id follow exists
	worker   sync.WaitGroup

	mu            sync.Mutex // guards the fields below
	started       bool
	working       bool // a worker or drainer runs
	pending       bool // work arrived since the worker last looked
	liveOnly      bool // no client_id follow: live events need no store call
	goingAway     bool
	checkpointDue bool
	ended         bool
	nextPing      time.Time // when the keepalive pings next
	pingAwaited   bool      // a ping went out; the peer has not been heard from since
	pingReads     uint64    // the connection's reads when it went out
	pingDeadline  time.Time // when a peer not heard from is dropped
}

// wsFrame is a client frame waiting for the worker.
type wsFrame struct {
	typ  websocket.MessageType
	data []byte
}

func newSession(ctx context.Context, svc *actors.Service, u *universe.Universe, conn *websocket.Conn, cc *corkConn, cfg WebsocketConfig, proto wsProtocol, pool *drainPool, keep *keepalive, logger *slog.Logger) *session {
	return &session{
		ctx: ctx, svc: svc, universe: u, conn: conn, cc: cc, cfg: cfg, proto: proto, pool: pool, keep: keep, logger: logger,
		liveOnly: true,
		metrics:  noWS,
		joins:    make(map[string]*wsJoin),
		follows:  make(map[int64]*wsFollow),
		frames:   make(chan wsFrame, 4),
		done:     make(chan struct{}),
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
			s.liveOnly = s.clients == 0
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
		if s.clients > 0 && s.cpTimer == nil {
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
	if checkpoint && s.clients > 0 {
		return s.checkpoint()
	}
	return nil
}

// errHandOver stops a drainer whose long burst the socket did not take at
// once: the worker writes the backlog, flushing as it goes.
var errHandOver = errors.New("burst handed over to the worker")

// takeLive writes the backlog and the events waiting in the subscription
// queue. When the queue ended it ends the session after them: a slow
// consumer gets what was queued within the grace, then the close frame.
func (s *session) takeLive() error {
	evs, ended, err := s.sub.Take(s.backlog)
	s.backlog = nil
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
		return s.wrote(s.cc.writeFramed(ev.Encoded(key, frame)))
	}
	return s.send(s.proto.event(s.buf[:0], j, ev.Event()))
}

func (s *session) handle(cmd wsCommand) error {
	switch cmd.op {
	case opReply:
		return s.write(cmd.reply)
	case opUnsubscribe:
		return s.unsubscribe(&cmd)
	case opSubscribe:
		return s.subscribe(&cmd)
	}
	return nil
}

func (s *session) unsubscribe(cmd *wsCommand) error {
	var topics []string
	for _, t := range cmd.topics {
		if j, ok := s.joins[t]; ok {
			topics = append(topics, pubsubTopics(s.leave(j))...)
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	if err := s.sub.Remove(ctx, topics...); err != nil {
		return s.failed(cmd, err)
	}
	if err := s.send(s.proto.unsubscribed(s.buf[:0], cmd)); err != nil {
		return err
	}
	return s.write(cmd.afterReply)
}

// leave drops a joined topic and returns the systems no other joined topic
// holds, which are no longer followed.
func (s *session) leave(j *wsJoin) []int64 {
	delete(s.joins, j.topic)
	var gone []int64
	for _, id := range j.systems {
		f := s.follows[id]
		if f == nil {
			continue
		}
		f.joins = slices.DeleteFunc(f.joins, func(x *wsJoin) bool { return x == j })
		if len(f.joins) == 0 {
			if f.clientID != "" {
				s.clients--
			}
			delete(s.follows, id)
			if id == eventlog.AllSystems {
				s.all = nil
			}
			if s.last == f {
				s.last = nil
			}
			gone = append(gone, id)
		}
	}
	return gone
}

// failed answers cmd with an error frame; the connection stays open.
func (s *session) failed(cmd *wsCommand, err error) error {
	_, msg := statusOf(err)
	return s.send(s.proto.failed(s.buf[:0], cmd, msg))
}

// subscribe joins cmd.topics. It subscribes to PubSub first, then replays
// the log after since (or the client's offsets), so that every event
// published after the replay's last read is in the subscription: the live
// events at or below that read's head are skipped. A system already
// followed through another topic keeps its follow: the replay skips what
// that follow sent or will send, so no event goes out twice.
func (s *session) subscribe(cmd *wsCommand) error {
	var systems []int64
	seen := make(map[int64]struct{})
	expanded := make([][]int64, len(cmd.topics))
	for i, t := range cmd.topics {
		ids, err := topicSystems(s.universe, t)
		if err != nil {
			return s.failed(cmd, err)
		}
		expanded[i] = ids
		for _, id := range ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				systems = append(systems, id)
			}
		}
	}
	n := 0
	for id := range s.follows {
		if id != eventlog.AllSystems {
			n++
		}
	}
	for _, id := range systems {
		if _, ok := s.follows[id]; !ok && id != eventlog.AllSystems {
			n++
		}
	}
	if n > s.cfg.MaxSystems {
		return s.failed(cmd, badParam("systems", "more than "+strconv.Itoa(s.cfg.MaxSystems)+" systems on this connection"))
	}
	if err := s.flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	err := s.sub.Add(ctx, pubsubTopics(systems)...)
	cancel()
	if err != nil {
		return s.failed(cmd, err)
	}
	// A topic joined already restarts from this request's position; a plain
	// subscribe of it again changes nothing.
	restart := cmd.hasSince || cmd.clientID != "" || len(cmd.joinRef) > 0
	joins := make([]*wsJoin, 0, len(cmd.topics))
	for i, t := range cmd.topics {
		if j, ok := s.joins[t]; ok {
			if !restart {
				continue
			}
			if err := s.send(s.proto.left(s.buf[:0], j)); err != nil {
				return err
			}
			s.leave(j)
		}
		joins = append(joins, &wsJoin{topic: t, systems: expanded[i], clientID: cmd.clientID, joinRef: cmd.joinRef})
	}
	r := replay{cmd: cmd, systems: systems}
	if len(joins) > 0 {
		r.join = joins[0]
	}
	switch {
	case cmd.clientID != "":
		err = s.replayClient(&r)
	case cmd.hasSince:
		r.start = cmd.since
		err = s.replaySince(&r)
	default:
		var b eventlog.Batch
		if b, err = s.fetch(&actors.FetchSince{}); err != nil {
			return s.failedSubscribe(cmd, systems, err)
		}
		r.head, r.start = b.Head, b.Head
		err = s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, false))
	}
	if r.failed {
		return s.failedSubscribe(cmd, systems, err)
	}
	if err != nil {
		return err
	}
	s.follow(joins, r.start, r.head)
	return nil
}

// replay is the state of one subscribe's replay.
type replay struct {
	cmd     *wsCommand
	systems []int64
	join    *wsJoin // the events go out on it
	start   uint64  // new follows sent every event after it
	head    uint64  // ... up to here
	failed  bool    // the first read failed: nothing was sent
}

// failedSubscribe undoes the PubSub side of a subscribe that failed.
func (s *session) failedSubscribe(cmd *wsCommand, systems []int64, err error) error {
	var topics []string
	for _, id := range systems {
		if _, ok := s.follows[id]; !ok {
			topics = append(topics, pubsubTopic(id))
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	_ = s.sub.Remove(ctx, topics...)
	cancel()
	return s.failed(cmd, err)
}

// fetch reads the log, after sending what the cork holds: frames, pings and
// pongs do not wait in memory behind a store round trip.
func (s *session) fetch(msg any) (eventlog.Batch, error) {
	if err := s.flush(); err != nil {
		return eventlog.Batch{}, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.svc.Fetch(ctx, msg)
}

// follow records joins as followed: new follows sent every event in
// (start, head]; existing ones, held by other topics, keep their position.
func (s *session) follow(joins []*wsJoin, start, head uint64) {
	for _, j := range joins {
		s.joins[j.topic] = j
		for _, id := range j.systems {
			f, ok := s.follows[id]
			if !ok {
				f = &wsFollow{system: id, start: start, floor: head}
				s.follows[id] = f
				if id == eventlog.AllSystems {
					s.all = f
				}
			}
			if strings.HasPrefix(j.topic, "system:") {
				f.joins = slices.Insert(f.joins, 0, j) // the most specific topic carries it
			} else {
				f.joins = append(f.joins, j)
			}
			if f.clientID == "" && j.clientID != "" {
				f.clientID = j.clientID
				s.clients++
			}
		}
	}
}

// covered says whether a followed system's existing follow sent ev or will
// send it live.
func (s *session) covered(ev eventlog.Event) bool {
	for _, f := range [2]*wsFollow{s.follows[ev.SystemID], s.all} {
		if f != nil && ev.ID > f.start {
			return true
		}
	}
	return false
}

func (s *session) replaySince(r *replay) error {
	head, err := s.replayPages(r, func(after uint64) any {
		return &actors.FetchSince{Selection: selection.Of(r.systems), After: after, Limit: wsReplayPage}
	}, nil)
	r.head = head
	return err
}

// replayClient replays what clientID has not read, advancing its offset
// past each event written; once caught up its offsets stand at the head.
func (s *session) replayClient(r *replay) error {
	clientID := r.cmd.clientID
	all := slices.Contains(r.systems, eventlog.AllSystems)
	head, err := s.replayPages(r, func(uint64) any {
		return &actors.PeekForClient{ClientID: clientID, Selection: selection.Of(r.systems), Limit: wsReplayPage, Owner: s.owner}
	}, func(ev eventlog.Event) error {
		key := ev.SystemID
		if all {
			key = eventlog.AllSystems
		}
		return s.advance(clientID, []int64{key}, ev.ID)
	})
	if err != nil {
		return err
	}
	if err := s.advance(clientID, r.systems, head); err != nil {
		return err
	}
	// The client's offsets differ per system: claim nothing before the head
	// as sent.
	r.start, r.head = head, head
	return nil
}

// replayPages reads page(after) until a short page, sending the subscribed
// acknowledgement first, then every event not already covered; wrote, when
// set, runs after each event. It returns the head of the last page.
func (s *session) replayPages(r *replay, page func(after uint64) any, wrote func(eventlog.Event) error) (uint64, error) {
	after := r.cmd.since
	for first := true; ; first = false {
		b, err := s.fetch(page(after))
		if err != nil {
			r.failed = first
			return 0, err // the stream would have a gap: end it, the client resumes
		}
		if first {
			if err := s.send(s.proto.subscribed(s.buf[:0], r.cmd, b.Head, b.Missed)); err != nil {
				return 0, err
			}
		}
		for _, ev := range b.Events {
			if !s.covered(ev) {
				s.metrics.Pushed.Inc()
				if err := s.send(s.proto.event(s.buf[:0], r.join, ev)); err != nil {
					return 0, err
				}
			}
			after = ev.ID
			if wrote != nil {
				if err := wrote(ev); err != nil {
					return 0, err
				}
			}
		}
		if len(b.Events) < wsReplayPage {
			return b.Head, nil
		}
	}
}

// advance moves clientID's offsets once the events before them are on the
// socket.
func (s *session) advance(clientID string, systems []int64, through uint64) error {
	if err := s.flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.svc.Advance(ctx, clientID, systems, through)
}

// live writes a published event unless it is not followed or was sent.
// The event's system and all may both be followed: it goes out once, on
// the first follow that has not sent it.
func (s *session) live(ev *actors.KillmailInserted) error {
	f := s.last
	if f == nil || f.system != ev.SystemID {
		if f = s.follows[ev.SystemID]; f != nil {
			s.last = f
		}
	}
	fs := [2]*wsFollow{f, s.all}
	var to *wsFollow
	for _, f := range fs {
		if f != nil && ev.EventID > f.floor && to == nil {
			to = f
		}
	}
	if to == nil {
		return nil
	}
	if err := s.sendEvent(ev, to.joins[0]); err != nil {
		return err
	}
	for _, f := range fs {
		if f == nil || f.floor >= ev.EventID {
			continue
		}
		f.floor = ev.EventID
		if f.clientID != "" {
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
	for id, f := range s.follows {
		if f.clientID != "" && f.floor < b.Head {
			byClient[f.clientID] = append(byClient[f.clientID], id)
		}
	}
	for id, systems := range byClient {
		if err := s.advance(id, systems, b.Head); err != nil {
			return connectionError(err)
		}
		for _, sys := range systems {
			s.follows[sys].floor = b.Head
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
