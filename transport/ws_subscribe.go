package transport

import (
	"context"
	"strconv"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
)

func (s *session) handle(cmd wsCommand) error {
	switch cmd.op {
	case opReply:
		return s.write(cmd.reply)
	case opUnsubscribe:
		return s.unsubscribe(&cmd)
	case opSubscribe:
		if !s.subscribes.Allow() {
			return s.failed(&cmd, badParam("subscribe", "more than "+
				strconv.FormatFloat(float64(s.cfg.SubscribeRate), 'g', -1, 64)+
				" a second on this connection; send it again in a moment"))
		}
		return s.subscribe(&cmd)
	}
	return nil
}

func (s *session) unsubscribe(cmd *wsCommand) error {
	var topics []string
	for _, sub := range cmd.subs {
		if j, ok := s.follows.joins[sub.key]; ok {
			s.follows.leave(j)
			topics = append(topics, s.release(j)...)
		}
	}
	s.filter(nil)
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

// failed answers cmd with an error frame; the connection stays open.
func (s *session) failed(cmd *wsCommand, err error) error {
	_, msg := statusOf(err)
	return s.send(s.proto.failed(s.buf[:0], cmd, msg))
}

// hold counts the PubSub topics of joins as needed and returns those the
// queue does not follow yet.
func (s *session) hold(joins []*wsJoin) []string {
	var added []string
	s.follows.held += len(joins)
	for _, j := range joins {
		for _, t := range j.topics {
			if s.topics[t] == 0 {
				added = append(added, t)
			}
			s.topics[t]++
		}
	}
	return added
}

// release drops j's claim on its PubSub topics and returns those no
// subscription needs any more.
func (s *session) release(j *wsJoin) []string {
	var gone []string
	for _, t := range j.topics {
		if s.topics[t]--; s.topics[t] <= 0 {
			delete(s.topics, t)
			gone = append(gone, t)
		}
	}
	return gone
}

// filter sets the subscription queue's filter to what the connection's
// subscriptions, and extra ones about to join, may want.
func (s *session) filter(extra []*wsJoin) {
	s.prepare()
	w := s.follows
	if len(extra) > 0 {
		w = &wsFollows{order: append(append([]*wsJoin(nil), w.order...), extra...)}
	}
	accept := w.accept()
	if accept == nil {
		s.sub.SetFilter(nil)
		return
	}
	s.sub.SetFilter(func(ev *actors.KillmailInserted) bool { return accept(ev.Event()) })
}

// prepare has the queue build the shared frame of each event as the
// session would send it (sendEvent) on PubSub's goroutine, once for every
// session alike, rather than on the drainer that writes it first.
func (s *session) prepare() {
	key, frame := s.proto.eventFrame()
	if frame == nil {
		s.sub.SetPrepare(nil)
		return
	}
	if s.names {
		if s.namedKey == nil {
			s.namedKey, s.namedBuild = namedFrame(key, frame, s.render)
		}
		key, frame = s.namedKey, s.namedBuild
	}
	s.sub.SetPrepare(func(ev *actors.KillmailInserted) { ev.Encoded(key, frame) })
}

// subscribe starts cmd's subscriptions. It subscribes to PubSub first (with
// the queue's filter widened to them), then replays the log after since
// (or the client's offsets), so that every event published after the
// replay's last read is in the subscription: the live events at or below
// that read's head are skipped. The replay skips what the connection's
// other subscriptions sent or will send, and what its last ended ones
// sent, so that no event goes out twice on one connection.
func (s *session) subscribe(cmd *wsCommand) error {
	if cmd.names != nil {
		s.names = *cmd.names
	}
	var systems []int64
	seen := make(map[int64]struct{})
	expanded := make([][]int64, len(cmd.subs))
	for i, sub := range cmd.subs {
		ids, err := selection.TopicSystems(s.universe, sub.loc)
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
	if s.follows.systemsWith(systems) > s.cfg.MaxSystems {
		return s.failed(cmd, badParam("systems", "more than "+strconv.Itoa(s.cfg.MaxSystems)+" systems on this connection"))
	}
	// A subscription that exists restarts from this request's position (it
	// sends nothing it sent already); a plain subscribe of it again
	// changes nothing.
	restart := cmd.hasSince || cmd.clientID != "" || len(cmd.joinRef) > 0
	var joins, replaced []*wsJoin
	for i, sub := range cmd.subs {
		if j, ok := s.follows.joins[sub.key]; ok {
			if !restart {
				continue
			}
			replaced = append(replaced, j)
		}
		j := &wsJoin{key: sub.key, topic: sub.topic, loc: sub.loc, systems: expanded[i],
			where: sub.where, clientID: cmd.clientID, joinRef: cmd.joinRef}
		sel := selection.Selection{Systems: j.systems, Where: j.where}
		j.topics, j.exact = selectionTopics(sel, s.cfg.entityTopics), topicsExact(sel, s.cfg.entityTopics)
		joins = append(joins, j)
	}
	if len(joins) == 0 {
		b, err := s.fetch(&actors.FetchSince{})
		if err != nil {
			return s.failed(cmd, err)
		}
		return s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, false))
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.filter(joins)
	added := s.hold(joins)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	err := s.sub.Add(ctx, added...)
	cancel()
	if err != nil {
		return s.failedSubscribe(cmd, joins, err)
	}
	var dropped []string
	for _, j := range replaced {
		if err := s.send(s.proto.left(s.buf[:0], j)); err != nil {
			return err
		}
		s.follows.leave(j)
		dropped = append(dropped, s.release(j)...) // none when the new one holds the same topics
	}
	if len(dropped) > 0 {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
		err := s.sub.Remove(ctx, dropped...)
		cancel()
		if err != nil {
			return s.failedSubscribe(cmd, joins, err)
		}
	}
	r := replay{cmd: cmd, sel: selection.Selection{Systems: systems, Where: joins[0].where}, join: joins[0]}
	switch {
	case cmd.clientID != "":
		err = s.replayClient(&r)
	case cmd.hasSince:
		r.start = cmd.since
		err = s.replaySince(&r)
	default:
		var b eventlog.Batch
		if b, err = s.fetch(&actors.FetchSince{}); err != nil {
			return s.failedSubscribe(cmd, joins, err)
		}
		r.head, r.start = b.Head, b.Head
		err = s.send(s.proto.subscribed(s.buf[:0], cmd, b.Head, false))
	}
	if r.failed {
		return s.failedSubscribe(cmd, joins, err)
	}
	if err != nil {
		return err
	}
	for _, j := range joins {
		j.start, j.from = r.start, r.head
	}
	s.follows.add(joins, r.head)
	s.filter(nil)
	return nil
}

// replay is the state of one subscribe's replay.
type replay struct {
	cmd    *wsCommand
	sel    selection.Selection
	join   *wsJoin // the events go out on it
	start  uint64  // the new subscriptions sent every event after it
	head   uint64  // ... up to here
	failed bool    // the first read failed: nothing was sent
}

// failedSubscribe undoes the PubSub side of a subscribe that failed.
func (s *session) failedSubscribe(cmd *wsCommand, joins []*wsJoin, err error) error {
	var topics []string
	for _, j := range joins {
		topics = append(topics, s.release(j)...)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	_ = s.sub.Remove(ctx, topics...)
	cancel()
	s.filter(nil)
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

func (s *session) replaySince(r *replay) error {
	head, err := s.replayPages(r, func(after uint64) any {
		return &actors.FetchSince{Selection: r.sel, After: after, Limit: wsReplayPage}
	}, nil, nil)
	r.head = head
	return err
}

// replayClient replays what clientID has not read, advancing its offset
// past each event written, and past each page's events considered; once
// caught up its offsets stand at the head.
func (s *session) replayClient(r *replay) error {
	clientID := r.cmd.clientID
	all := r.sel.IsAll()
	head, err := s.replayPages(r, func(uint64) any {
		return &actors.PeekForClient{ClientID: clientID, Selection: r.sel, Limit: wsReplayPage, Owner: s.owner}
	}, func(ev eventlog.Event) error {
		key := ev.SystemID
		if all {
			key = eventlog.AllSystems
		}
		return s.advance(clientID, []int64{key}, ev.ID)
	}, func(b eventlog.Batch) error {
		return s.advance(clientID, r.sel.Systems, b.Through)
	})
	if err != nil {
		return err
	}
	if err := s.advance(clientID, r.sel.Systems, head); err != nil {
		return err
	}
	// The client's offsets differ per system: claim nothing before the head
	// as sent.
	r.start, r.head = head, head
	return nil
}

// replayPages reads page(after) until the log says there is no more,
// sending the subscribed acknowledgement first, then every event not
// already covered; wrote, when set, runs after each event, paged after
// each page that has a next one. It returns the head of the last page.
func (s *session) replayPages(r *replay, page func(after uint64) any, wrote func(eventlog.Event) error, paged func(eventlog.Batch) error) (uint64, error) {
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
			if !s.follows.covered(ev) {
				s.metrics.Pushed.Inc()
				if err := s.send(s.proto.event(s.buf[:0], r.join, s.named(ev))); err != nil {
					return 0, err
				}
			}
			if wrote != nil {
				if err := wrote(ev); err != nil {
					return 0, err
				}
			}
		}
		if !b.More {
			return b.Head, nil
		}
		after = b.Through
		if paged != nil {
			if err := paged(b); err != nil {
				return 0, err
			}
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
