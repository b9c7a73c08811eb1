package transport

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
)

func (s *Server) requestContext(c echo.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout+wait)
}

// pollContext is the context of a poll's fetches and the deadline of its
// store reads: RequestTimeout, plus the wait of a long-poll. A poll that
// does not wait needs no context of its own (its fetch carries the
// deadline), and makes none.
func (s *Server) pollContext(c echo.Context, wait time.Duration) (context.Context, time.Time, context.CancelFunc) {
	deadline := time.Now().Add(s.cfg.RequestTimeout + wait)
	if wait == 0 {
		return c.Request().Context(), deadline, func() {}
	}
	ctx, cancel := context.WithDeadline(c.Request().Context(), deadline)
	return ctx, deadline, cancel
}

// poll serves GET /api/killfeed.
func (s *Server) poll(c echo.Context) error {
	q, err := parsePoll(s.universe, c.Request().URL.RawQuery, s.cfg.MaxSystems, true)
	if err != nil {
		return err
	}
	ctx, deadline, cancel := s.pollContext(c, q.wait)
	defer cancel()
	b, err := s.fetchWaiting(ctx, q, &actors.FetchForClient{ClientID: q.clientID, Selection: q.sel, Limit: q.limit, Owner: ownerOf(c), Deadline: deadline})
	if err != nil {
		return err
	}
	size := 128 // the brackets and the position
	for i := range b.Events {
		b.Events[i] = s.named(b.Events[i], q.names)
		size += len(b.Events[i].Killmail) + 64
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"events":[`...)
	for i, ev := range b.Events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = ev.AppendJSON(buf)
	}
	buf = append(buf, ']')
	buf = appendPosition(buf, b)
	return deliver(c, &b, append(buf, '}'))
}

// next serves GET /api/killfeed/next: one event, or 204.
func (s *Server) next(c echo.Context) error {
	q, err := parsePoll(s.universe, c.Request().URL.RawQuery, s.cfg.MaxSystems, false)
	if err != nil {
		return err
	}
	ctx, deadline, cancel := s.pollContext(c, q.wait)
	defer cancel()
	b, err := s.fetchOne(ctx, q, &actors.FetchOneEvent{ClientID: q.clientID, Selection: q.sel, Owner: ownerOf(c), Deadline: deadline})
	if err != nil {
		return err
	}
	if len(b.Events) == 0 {
		return c.NoContent(http.StatusNoContent)
	}
	b.Events[0] = s.named(b.Events[0], q.names)
	buf := b.Events[0].AppendJSON(make([]byte, 0, len(b.Events[0].Killmail)+128))
	buf = appendPosition(buf[:len(buf)-1], b)
	return deliver(c, &b, append(buf, '}'))
}

// deliver writes body, the JSON answer made of the fetched batch b, with
// status 200. When the answer cannot reach the client — it went away while
// the store answered (the request's context is done), or the write or its
// flush to the connection failed — b's events are put back as unread, so
// that the client's next poll returns them again: a fetch counts as read
// only once its answer was handed to the connection.
func deliver(c echo.Context, b *eventlog.Batch, body []byte) error {
	if err := c.Request().Context().Err(); err != nil {
		b.Unread()
		return err
	}
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	// The gzip middleware leaves these routes alone (see selfCompressed):
	// it would compress every answer it is made to flush, however small,
	// and send it chunked.
	if accepts := c.Request().Header.Get(echo.HeaderAcceptEncoding); accepts != "" && acceptsGzip(accepts) {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if len(body) >= gzipMinLength {
			body = gzipped(body)
			h.Set(echo.HeaderContentEncoding, "gzip")
		}
	}
	// With its length known the answer goes out in one write at the flush,
	// not chunked with a terminating chunk written after the handler.
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	if err == nil {
		err = http.NewResponseController(w).Flush()
	}
	if err != nil {
		b.Unread()
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}

// appendPosition appends ,"missed":…,"oldest_event_id":…,"head":…,
// "more":… .
func appendPosition(buf []byte, b eventlog.Batch) []byte {
	buf = append(buf, `,"more":`...)
	buf = strconv.AppendBool(buf, b.More)
	buf = append(buf, `,"missed":`...)
	buf = strconv.AppendBool(buf, b.Missed)
	buf = append(buf, `,"oldest_event_id":`...)
	buf = strconv.AppendUint(buf, b.Oldest, 10)
	buf = append(buf, `,"head":`...)
	return strconv.AppendUint(buf, b.Head, 10)
}

// fetchOnePages is how many reads one request for a single event makes at
// most while filtered reads stop at their scan bound with nothing that
// matches.
const fetchOnePages = 10

// fetchOne fetches one event as fetchWaiting does; while a filtered read
// stops at its scan bound with nothing matching, it reads on (a few pages
// at most), since the answer has no room to say more.
func (s *Server) fetchOne(ctx context.Context, q pollQuery, msg any) (eventlog.Batch, error) {
	for page := 1; ; page++ {
		b, err := s.fetchWaiting(ctx, q, msg)
		if err != nil || len(b.Events) > 0 || !b.More || page == fetchOnePages {
			return b, err
		}
	}
}

// fetchWaiting fetches; with a wait and nothing new it holds the request
// until an event of the query's systems is published, then fetches again.
// It subscribes before the first fetch, so no event slips between the two.
func (s *Server) fetchWaiting(ctx context.Context, q pollQuery, msg any) (eventlog.Batch, error) {
	if q.wait == 0 {
		return s.svc.Fetch(ctx, msg)
	}
	topics := selectionTopics(q.sel, s.cfg.EntityTopics)
	// One buffered event is enough to wake up; an overflow closes C, which
	// wakes us too.
	sub, err := s.svc.SubscribeTopics(ctx, 1, topics...)
	if err != nil {
		return eventlog.Batch{}, err
	}
	defer sub.Close()
	b, err := s.svc.Fetch(ctx, msg)
	if err != nil || len(b.Events) > 0 || b.More {
		return b, err // with More, the client reads the next page at once
	}
	s.metrics.LongPollsWaiting.Inc()
	defer s.metrics.LongPollsWaiting.Dec()
	timer := time.NewTimer(q.wait)
	defer timer.Stop()
	for {
		var open bool
		select {
		case _, open = <-sub.C:
		case <-timer.C:
			return b, nil
		case <-s.draining:
			return b, nil
		case <-ctx.Done():
			return b, ctx.Err()
		}
		// The event that woke us may hold nothing for this client (another
		// poll of it took it, or it came before a new queue's start): wait
		// on, unless the subscription ended (an overflow closes C).
		if b, err = s.svc.Fetch(ctx, msg); err != nil || len(b.Events) > 0 || b.More || !open {
			return b, err
		}
	}
}
