package transport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
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
	// left tells the client a followed system was dropped by a later
	// command (Phoenix's phx_close of a replaced join).
	left(dst []byte, system int64, f *wsFollow) []byte
	// event pushes one event of a followed system.
	event(dst []byte, f *wsFollow, ev eventlog.Event) []byte
}

type wsOp uint8

const (
	opReply       wsOp = iota // write reply as is
	opSubscribe               // follow systems, from since / client_id / the head
	opUnsubscribe             // stop following systems
)

// wsCommand is a parsed client frame.
type wsCommand struct {
	op       wsOp
	reply    []byte
	systems  []int64
	since    uint64
	hasSince bool
	clientID string
	// Phoenix addressing, echoed verbatim (raw JSON).
	joinRef, ref json.RawMessage
	// afterReply is written after the acknowledgement (Phoenix phx_close).
	afterReply []byte
}

// wsFollow is the state of one followed system.
type wsFollow struct {
	// floor: every event of the system with id <= floor was sent or is
	// not wanted; live events at or below it are skipped.
	floor    uint64
	clientID string          // advanced as events are written, when set
	joinRef  json.RawMessage // Phoenix join_ref
}

// session runs one websocket connection. One goroutine (run) owns the
// follows, reads the subscription and writes every frame; a reader
// goroutine parses client frames; pings run on a timer.
type session struct {
	ctx    context.Context // canceled by CloseWebsockets
	svc    *actors.Service
	conn   *websocket.Conn
	cfg    WebsocketConfig
	proto  wsProtocol
	logger *slog.Logger

	sub     *actors.Subscription
	follows map[int64]*wsFollow
	clients int // follows with a client id
	buf     []byte
	drainBy time.Time // set once the subscription overflowed
	cmds    chan wsCommand

	pingMu    sync.Mutex
	pingTimer *time.Timer
	ended     bool
}

func newSession(ctx context.Context, svc *actors.Service, conn *websocket.Conn, cfg WebsocketConfig, proto wsProtocol, logger *slog.Logger) *session {
	return &session{
		ctx: ctx, svc: svc, conn: conn, cfg: cfg, proto: proto, logger: logger,
		follows: make(map[int64]*wsFollow),
		cmds:    make(chan wsCommand, 4),
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

func (s *session) run() {
	readCtx, stopRead := context.WithCancel(context.Background())
	go s.read(readCtx)
	defer func() {
		s.pingMu.Lock()
		s.ended = true
		if s.pingTimer != nil {
			s.pingTimer.Stop()
		}
		s.pingMu.Unlock()
		stopRead()
		_ = s.conn.CloseNow()
		for range s.cmds { // wait for the reader
		}
	}()

	sub, err := s.svc.SubscribeTopics(s.ctx, s.cfg.Buffer)
	if err != nil {
		s.close(&closeError{websocket.StatusTryAgainLater, "store unavailable"})
		return
	}
	s.sub = sub
	defer sub.Close()
	if s.cfg.PingInterval > 0 {
		s.pingMu.Lock()
		s.pingTimer = time.AfterFunc(s.cfg.PingInterval, s.ping)
		s.pingMu.Unlock()
	}
	s.close(s.loop())
}

func (s *session) loop() error {
	var checkpoint *time.Ticker // only while a client_id follow exists
	defer func() {
		if checkpoint != nil {
			checkpoint.Stop()
		}
	}()
	for {
		var tick <-chan time.Time
		if s.clients > 0 {
			if checkpoint == nil {
				checkpoint = time.NewTicker(wsCheckpointInterval)
			}
			tick = checkpoint.C
		}
		select {
		case <-s.ctx.Done():
			return &closeError{websocket.StatusGoingAway, "server shutting down"}
		case cmd, ok := <-s.cmds:
			if !ok {
				return errClosed
			}
			if err := s.handle(cmd); err != nil {
				return err
			}
		case ev, ok := <-s.sub.C:
			if !ok {
				return s.subscriptionEnded()
			}
			if err := s.live(ev); err != nil {
				return err
			}
		case <-tick:
			if err := s.checkpoint(); err != nil {
				return err
			}
		}
	}
}

func (s *session) subscriptionEnded() error {
	if errors.Is(s.sub.Err(), actors.ErrSlowConsumer) {
		return &closeError{websocket.StatusPolicyViolation, "slow consumer"}
	}
	return &closeError{websocket.StatusGoingAway, "server shutting down"}
}

// close ends the connection: with a close frame for a closeError (the
// frame waits behind the write in flight; coder/websocket gives the peer 5s
// to write it and 5s to answer), at once otherwise.
func (s *session) close(err error) {
	s.pingMu.Lock()
	s.ended = true
	s.pingMu.Unlock()
	var ce *closeError
	if errors.As(err, &ce) {
		_ = s.conn.Close(ce.code, ce.reason)
		return
	}
	_ = s.conn.CloseNow()
}

// read parses client frames until the connection fails; a frame over the
// read limit makes coder/websocket close with 1009.
func (s *session) read(ctx context.Context) {
	defer close(s.cmds)
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return
		}
		select {
		case s.cmds <- s.proto.parse(typ, data):
		case <-ctx.Done():
			return
		}
	}
}

// ping sends a keepalive ping and drops a peer that does not answer.
func (s *session) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	err := s.conn.Ping(ctx)
	cancel()
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if s.ended {
		return
	}
	if err != nil {
		_ = s.conn.CloseNow()
		return
	}
	s.pingTimer.Reset(s.cfg.PingInterval)
}

// write sends one text frame within the write timeout (or what is left of
// the grace after an overflow). A failed write closes the connection.
func (s *session) write(frame []byte) error {
	if len(frame) == 0 {
		return nil
	}
	timeout := s.cfg.WriteTimeout
	if !s.drainBy.IsZero() {
		timeout = min(timeout, time.Until(s.drainBy))
		if timeout <= 0 {
			return errClosed
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return errClosed
	}
	return nil
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
	topics := make([]string, 0, len(cmd.systems))
	for _, id := range cmd.systems {
		if f, ok := s.follows[id]; ok {
			s.drop(id, f)
			topics = append(topics, actors.SystemTopic(id))
		}
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

func (s *session) drop(id int64, f *wsFollow) {
	if f.clientID != "" {
		s.clients--
	}
	delete(s.follows, id)
}

// failed answers cmd with an error frame; the connection stays open.
func (s *session) failed(cmd *wsCommand, err error) error {
	_, msg := statusOf(err)
	return s.send(s.proto.failed(s.buf[:0], cmd, msg))
}

// subscribe follows cmd.systems. It subscribes to PubSub first, then
// replays the log after since (or the client's offsets), so that every
// event published after the replay's last read is in the subscription: the
// live events at or below that read's head are skipped.
func (s *session) subscribe(cmd *wsCommand) error {
	added := 0
	for _, id := range cmd.systems {
		if _, ok := s.follows[id]; !ok {
			added++
		}
	}
	if len(s.follows)+added > s.cfg.MaxSystems {
		return s.failed(cmd, badParam("systems", "more than "+strconv.Itoa(s.cfg.MaxSystems)+" systems on this connection"))
	}
	topics := make([]string, len(cmd.systems))
	for i, id := range cmd.systems {
		topics[i] = actors.SystemTopic(id)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	err := s.sub.Add(ctx, topics...)
	cancel()
	if err != nil {
		return s.failed(cmd, err)
	}
	// Systems followed already restart from this request's position.
	for _, id := range cmd.systems {
		if f, ok := s.follows[id]; ok {
			if err := s.send(s.proto.left(s.buf[:0], id, f)); err != nil {
				return err
			}
			if cmd.hasSince || cmd.clientID != "" || len(f.joinRef) > 0 {
				s.drop(id, f)
			}
		}
	}
	switch {
	case cmd.clientID != "":
		return s.replayClient(cmd)
	case cmd.hasSince:
		return s.replaySince(cmd)
	}
	b, err := s.fetch(&actors.FetchSince{})
	if err != nil {
		return s.failedSubscribe(cmd, err)
	}
	s.follow(cmd, b.Head)
	return s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, false))
}

// failedSubscribe undoes the PubSub side of a subscribe that failed.
func (s *session) failedSubscribe(cmd *wsCommand, err error) error {
	var topics []string
	for _, id := range cmd.systems {
		if _, ok := s.follows[id]; !ok {
			topics = append(topics, actors.SystemTopic(id))
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	_ = s.sub.Remove(ctx, topics...)
	cancel()
	return s.failed(cmd, err)
}

func (s *session) fetch(msg any) (eventlog.Batch, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.svc.Fetch(ctx, msg)
}

// follow records cmd's systems as followed from floor.
func (s *session) follow(cmd *wsCommand, floor uint64) {
	for _, id := range cmd.systems {
		if f, ok := s.follows[id]; ok {
			f.floor = max(f.floor, floor)
			continue
		}
		s.follows[id] = &wsFollow{floor: floor, clientID: cmd.clientID, joinRef: cmd.joinRef}
		if cmd.clientID != "" {
			s.clients++
		}
	}
}

func (s *session) replaySince(cmd *wsCommand) error {
	after := cmd.since
	for first := true; ; first = false {
		b, err := s.fetch(&actors.FetchSince{Systems: cmd.systems, After: after, Limit: wsReplayPage})
		if err != nil {
			if first {
				return s.failedSubscribe(cmd, err)
			}
			return err // the stream would have a gap: end it, the client resumes
		}
		if first {
			if err := s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, b.Missed)); err != nil {
				return err
			}
		}
		for _, ev := range b.Events {
			if err := s.send(s.proto.event(s.buf[:0], &wsFollow{joinRef: cmd.joinRef}, ev)); err != nil {
				return err
			}
			after = ev.ID
		}
		if len(b.Events) < wsReplayPage {
			s.follow(cmd, b.Head)
			return nil
		}
	}
}

// replayClient replays what clientID has not read, advancing its offset
// past each event written; once caught up its offsets stand at the head.
func (s *session) replayClient(cmd *wsCommand) error {
	for first := true; ; first = false {
		b, err := s.fetch(&actors.PeekForClient{ClientID: cmd.clientID, Systems: cmd.systems, Limit: wsReplayPage})
		if err != nil {
			if first {
				return s.failedSubscribe(cmd, err)
			}
			return err
		}
		if first {
			if err := s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, b.Missed)); err != nil {
				return err
			}
		}
		for _, ev := range b.Events {
			if err := s.send(s.proto.event(s.buf[:0], &wsFollow{joinRef: cmd.joinRef}, ev)); err != nil {
				return err
			}
			if err := s.advance(cmd.clientID, []int64{ev.SystemID}, ev.ID); err != nil {
				return err
			}
		}
		if len(b.Events) < wsReplayPage {
			if err := s.advance(cmd.clientID, cmd.systems, b.Head); err != nil {
				return err
			}
			s.follow(cmd, b.Head)
			return nil
		}
	}
}

func (s *session) advance(clientID string, systems []int64, through uint64) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.svc.Advance(ctx, clientID, systems, through)
}

// live writes a published event unless it is not followed or was replayed.
func (s *session) live(ev *actors.KillmailInserted) error {
	if s.drainBy.IsZero() && s.sub.Err() != nil {
		// Overflowed: what is buffered goes out behind the write in flight,
		// within the grace, then the close frame.
		s.drainBy = time.Now().Add(wsCloseGrace)
	}
	f := s.follows[ev.SystemID]
	if f == nil || ev.EventID <= f.floor {
		return nil
	}
	f.floor = ev.EventID
	if err := s.send(s.proto.event(s.buf[:0], f, ev.Event())); err != nil {
		return err
	}
	if f.clientID != "" {
		return s.advance(f.clientID, []int64{ev.SystemID}, ev.EventID)
	}
	return nil
}

// checkpoint moves the offsets of client_id follows to the head: it reads
// the head, waits until PubSub has handed over every event up to it, writes
// them, then advances.
func (s *session) checkpoint() error {
	b, err := s.fetch(&actors.FetchSince{})
	if err != nil {
		return nil // try again at the next tick
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	err = s.sub.Add(ctx) // a round trip through PubSub's mailbox
	cancel()
	if err != nil {
		return nil
	}
	for drained := false; !drained; {
		select {
		case ev, ok := <-s.sub.C:
			if !ok {
				return s.subscriptionEnded()
			}
			if err := s.live(ev); err != nil {
				return err
			}
		default:
			drained = true
		}
	}
	byClient := make(map[string][]int64)
	for id, f := range s.follows {
		if f.clientID != "" && f.floor < b.Head {
			byClient[f.clientID] = append(byClient[f.clientID], id)
		}
	}
	for id, systems := range byClient {
		if err := s.advance(id, systems, b.Head); err != nil {
			return nil
		}
		for _, sys := range systems {
			s.follows[sys].floor = b.Head
		}
	}
	return nil
}
