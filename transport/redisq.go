package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// RedisQ compatibility (GET /listen.php and GET /api/redisq/listen.php).
const (
	// redisqDefaultTTW is how long a call waits for a killmail, as on
	// zKillboard's RedisQ; ttw is clamped to 1-10 seconds.
	redisqDefaultTTW = 10
	redisqMaxQueueID = 100
	// redisqClientPrefix namespaces queue ids among client ids: '/' is not
	// allowed in a client_id, so a queue cannot collide with a poll client.
	redisqClientPrefix = "redisq/"
)

// redisqQueues tracks the queues with a request in progress.
type redisqQueues struct {
	mu   sync.Mutex
	busy map[string]chan struct{} // closed when the request ends
}

func newRedisqQueues() *redisqQueues {
	return &redisqQueues{busy: make(map[string]chan struct{})}
}

// redisqQueueWait is how long a request waits for the one in progress on
// its queue before it is refused: a bot's loop may send its next request
// as soon as it has read the answer, a moment before the server is done
// with the one that wrote it.
const redisqQueueWait = 2 * time.Second

// acquire takes the queue id for one request, waiting up to
// redisqQueueWait for a request in progress to end; false when it did not.
func (q *redisqQueues) acquire(ctx context.Context, id string) bool {
	var timer <-chan time.Time
	for {
		q.mu.Lock()
		done, busy := q.busy[id]
		if !busy {
			q.busy[id] = make(chan struct{})
			q.mu.Unlock()
			return true
		}
		q.mu.Unlock()
		if timer == nil {
			t := time.NewTimer(redisqQueueWait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-done:
		case <-timer:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (q *redisqQueues) release(id string) {
	q.mu.Lock()
	close(q.busy[id])
	delete(q.busy, id)
	q.mu.Unlock()
}

// redisqListen serves RedisQ's listen.php: the next killmail of the queue
// queueID as {"package":{"killID":…,"killmail":{…},"zkb":{…}}}, or
// {"package":null} once ttw seconds passed without one. A queue is a
// client following everything (or its filter), so it gets every killmail
// once, in event_id order, and is remembered for the client TTL.
func (s *Server) redisqListen(c echo.Context) error {
	c.Response().Header().Set("Access-Control-Allow-Origin", "*")
	rq, err := parseRedisqQuery(s.universe, c.Request().URL.RawQuery, s.cfg.MaxSystems)
	if err != nil {
		return err
	}
	queueID, ttw := rq.queueID, rq.ttw
	names, err := parseNamesParam(c.QueryParams(), false) // upstream shape unless asked
	if err != nil {
		return err
	}
	if !s.redisq.acquire(c.Request().Context(), queueID) {
		return echo.NewHTTPError(http.StatusTooManyRequests, "queueID: another request for this queue is in progress")
	}
	defer s.redisq.release(queueID)

	pq := pollQuery{clientID: redisqClientPrefix + queueID, sel: rq.sel, wait: time.Duration(ttw) * time.Second}
	ctx, cancel := s.requestContext(c, pq.wait)
	defer cancel()
	deadline := time.Now().Add(pq.wait)
	msg := &actors.FetchOneEvent{ClientID: pq.clientID, Selection: pq.sel, NewAtHead: true, Owner: ownerOf(c)}
	var b eventlog.Batch
	for skipped := 0; ; skipped++ {
		if b, err = s.fetchOne(ctx, pq, msg); err != nil {
			return err
		}
		// A rule on a key the facts do not hold is decided on the body;
		// an event it refuses was considered, and its queue moved past it.
		if len(b.Events) == 0 || rq.sel.Where.MatchBody(b.Events[0].Facts, b.Events[0].Killmail) {
			break
		}
		b.Events = nil
		if pq.wait = max(time.Until(deadline), 0); skipped == redisqMaxSkips {
			break
		}
	}
	if len(b.Events) == 0 {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(`{"package":null}`))
	}
	b.Events[0] = s.named(b.Events[0], names)
	buf, err := appendRedisqPackage(make([]byte, 0, len(b.Events[0].Killmail)+64), b.Events[0].Killmail)
	if err != nil {
		return err
	}
	return deliver(c, &b, buf) // a package that was not written stays first in the queue
}

// redisqMaxSkips bounds the killmails one listen.php call reads past when
// its filter decides on the body.
const redisqMaxSkips = 1000

// redisqQuery is a validated listen.php request.
type redisqQuery struct {
	queueID string
	ttw     int // seconds, 1-10
	sel     selection.Selection
}

// parseRedisqQuery reads queueID (required), ttw (clamped to 1-10 seconds;
// anything that is not an integer means the default), filter and esi (the
// package always carries the killmail). Other parameters (bots send
// cache-busters) are ignored.
func parseRedisqQuery(u *universe.Universe, raw string, maxSystems int) (redisqQuery, error) {
	q, err := parseQuery(raw)
	if err != nil {
		return redisqQuery{}, err
	}
	queueID := strings.TrimSpace(q.Get("queueID"))
	if queueID == "" {
		return redisqQuery{}, badParam("queueID", "required (listen.php?queueID=yourbot)")
	}
	if len(queueID) > redisqMaxQueueID {
		return redisqQuery{}, badParam("queueID", "longer than "+strconv.Itoa(redisqMaxQueueID)+" bytes")
	}
	ttw := redisqDefaultTTW
	if n, err := strconv.Atoi(strings.TrimSpace(q.Get("ttw"))); err == nil {
		ttw = min(redisqDefaultTTW, max(1, n))
	}
	sel := selection.All()
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		if sel, err = parseRedisqFilter(u, f, maxSystems); err != nil {
			return redisqQuery{}, err
		}
	}
	return redisqQuery{queueID: queueID, ttw: ttw, sel: sel}, nil
}

// parseRedisqFilter reads filter= in either of its two kinds: killfeed's
// own system:<id>, constellation:<id> and region:<id> terms separated by
// commas (a killmail matching any term is delivered), or RedisQ's
// key<op>value rules (see selection.ParseRedisQFilter). Every error names
// filter.
func parseRedisqFilter(u *universe.Universe, f string, maxSystems int) (selection.Selection, error) {
	if selection.IsRedisQFilter(f) {
		where, err := selection.ParseRedisQFilter(f)
		if err != nil {
			return selection.Selection{}, err
		}
		return selection.Selection{Systems: []int64{selection.AllSystems}, Where: where}, nil
	}
	var topics []string
	for _, term := range strings.Split(f, ",") {
		term = strings.TrimSpace(term)
		kind, _, ok := selection.ParseTopic(term)
		if !ok || kind == "all" {
			return selection.Selection{}, badParam("filter", strconv.Quote(term)+
				" is not system:<id>, constellation:<id> or region:<id> (terms separated by commas), nor RedisQ's key<op>value")
		}
		if _, err := selection.TopicSystems(u, term); err != nil {
			return selection.Selection{}, badParam("filter", strconv.Quote(term)+" names no known "+kind)
		}
		topics = append(topics, term)
	}
	systems, err := selection.ExpandTopics(u, topics, maxSystems)
	if err != nil {
		var pe *selection.ParamError
		if errors.As(err, &pe) {
			return selection.Selection{}, badParam("filter", pe.Problem)
		}
		return selection.Selection{}, err
	}
	return selection.Of(systems), nil
}

var errNoKillmailID = errors.New("stored killmail has no killmail_id")

// appendRedisqPackage appends {"package":{"killID":…,"killmail":…,"zkb":…}}
// built from a stored killmail: its "zkb" field is moved out of the ESI
// object (null when there is none); everything else is kept verbatim.
func appendRedisqPackage(dst, km []byte) ([]byte, error) {
	killID, esi, zkb, err := splitZKB(km)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"package":{"killID":`...)
	dst = append(dst, killID...)
	dst = append(dst, `,"killmail":`...)
	dst = append(dst, esi...)
	dst = append(dst, `,"zkb":`...)
	if zkb == nil {
		zkb = jsonNull
	}
	dst = append(dst, zkb...)
	return append(dst, "}}"...), nil
}

// splitZKB cuts the top-level "zkb" members out of a JSON object and
// returns the killmail_id, the object without zkb, and zkb (nil if absent).
// A repeated member counts as its last occurrence, as JSON decoders read
// it; every "zkb" is cut, so the killmail carries none of its own.
func splitZKB(km []byte) (killID, esi, zkb []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(km))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, nil, errors.New("stored killmail is not a JSON object")
	}
	var kept [][]byte // the members but zkb, each as key:value
	for dec.More() {
		start := int(dec.InputOffset()) // at the comma before the key, or after '{'
		t, err := dec.Token()
		if err != nil {
			return nil, nil, nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, nil, err
		}
		switch t {
		case "killmail_id":
			killID = raw
		case "zkb":
			zkb = raw
			continue
		}
		kept = append(kept, bytes.TrimLeft(km[start:dec.InputOffset()], ", \t\r\n"))
	}
	if killID == nil {
		return nil, nil, nil, errNoKillmailID
	}
	if zkb == nil {
		return killID, km, nil, nil
	}
	esi = make([]byte, 0, len(km))
	esi = append(esi, '{')
	for i, m := range kept {
		if i > 0 {
			esi = append(esi, ',')
		}
		esi = append(esi, m...)
	}
	esi = append(esi, '}')
	return killID, esi, zkb, nil
}
