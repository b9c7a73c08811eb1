package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
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
	busy map[string]struct{}
}

func newRedisqQueues() *redisqQueues {
	return &redisqQueues{busy: make(map[string]struct{})}
}

func (q *redisqQueues) acquire(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, busy := q.busy[id]; busy {
		return false
	}
	q.busy[id] = struct{}{}
	return true
}

func (q *redisqQueues) release(id string) {
	q.mu.Lock()
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
	rq, err := parseRedisqQuery(s.universe, c.QueryParams(), s.cfg.MaxSystems)
	if err != nil {
		return err
	}
	queueID, ttw, systems := rq.queueID, rq.ttw, rq.systems
	if !s.redisq.acquire(queueID) {
		return echo.NewHTTPError(http.StatusTooManyRequests, "queueID: another request for this queue is in progress")
	}
	defer s.redisq.release(queueID)

	pq := pollQuery{clientID: redisqClientPrefix + queueID, systems: systems, wait: time.Duration(ttw) * time.Second}
	ctx, cancel := s.requestContext(c, pq.wait)
	defer cancel()
	b, err := s.fetchWaiting(ctx, pq, &actors.FetchOneEvent{ClientID: pq.clientID, Systems: pq.systems, NewAtHead: true})
	if err != nil {
		return err
	}
	if len(b.Events) == 0 {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(`{"package":null}`))
	}
	buf, err := appendRedisqPackage(make([]byte, 0, len(b.Events[0].Killmail)+64), b.Events[0].Killmail)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf)
}

// redisqQuery is a validated listen.php request.
type redisqQuery struct {
	queueID string
	ttw     int     // seconds, 1-10
	systems []int64 // [eventlog.AllSystems] without a filter
}

// parseRedisqQuery reads queueID (required), ttw (clamped to 1-10 seconds;
// anything that is not an integer means the default) and filter.
func parseRedisqQuery(u *universe.Universe, q url.Values, maxSystems int) (redisqQuery, error) {
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
	systems := []int64{eventlog.AllSystems}
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		topics, err := parseRedisqFilter(f)
		if err != nil {
			return redisqQuery{}, err
		}
		if systems, err = expandTopics(u, topics, maxSystems); err != nil {
			return redisqQuery{}, err
		}
	}
	return redisqQuery{queueID: queueID, ttw: ttw, systems: systems}, nil
}

// parseRedisqFilter reads filter=system:30000142,region:10000002,… into
// topics; a killmail matching any term is delivered.
func parseRedisqFilter(f string) ([]string, error) {
	var topics []string
	for _, term := range strings.Split(f, ",") {
		term = strings.TrimSpace(term)
		kind, _, ok := topicKey(term)
		if !ok || kind == AllTopic {
			return nil, badParam("filter", strconv.Quote(term)+
				" is not system:<id>, constellation:<id> or region:<id> (terms separated by commas)")
		}
		topics = append(topics, term)
	}
	return topics, nil
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
