package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
)

// drainTest is a server on a fresh service and a client subscribed to
// system 30000142 whose socket has a small receive buffer: loopback
// autotuning may otherwise take tens of megabytes before the socket is
// full.
type drainTest struct {
	svc *actors.Service
	srv *Server
	url string // the test server's http:// URL
	c   *websocket.Conn
	ctx context.Context
}

// startService starts the actors on an in-memory log, stopped when the
// test ends.
func startService(t testing.TB) *actors.Service {
	t.Helper()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop(); _ = log.Close() })
	return svc
}

func startDrainTest(t *testing.T, cfg WebsocketConfig) *drainTest {
	t.Helper()
	svc := startService(t)
	srv := New(svc, Config{Websocket: cfg})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)

	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return conn, err
	}}}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	c.SetReadLimit(1 << 20)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","systems":[30000142]}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("subscribe: %s %v", b, err)
	}
	return &drainTest{svc: svc, srv: srv, url: ts.URL, c: c, ctx: ctx}
}

func (d *drainTest) insert(t *testing.T, kms ...killmail.Killmail) {
	t.Helper()
	if _, err := d.svc.Insert(d.ctx, kms, nil); err != nil {
		t.Fatal(err)
	}
}

// readEvents reads n events and checks that their ids run from 1 to n.
func (d *drainTest) readEvents(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for i := range n {
		_, b, err := d.c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", i, n, err)
		}
		var ev struct {
			EventID uint64 `json:"event_id"`
		}
		if err := json.Unmarshal(b, &ev); err != nil || ev.EventID != uint64(i+1) {
			t.Fatalf("event %d: event_id %d (%v)", i+1, ev.EventID, err)
		}
	}
}

// session is the server's one websocket session.
func (d *drainTest) session() *session {
	d.srv.ws.mu.Lock()
	defer d.srv.ws.mu.Unlock()
	for wc := range d.srv.ws.conns {
		return wc.sess
	}
	return nil
}

// waitFor polls cond every millisecond for up to 5 s and fails the test
// with what when it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 5000 {
			t.Fatal(what)
		}
		time.Sleep(time.Millisecond)
	}
}

func padded(i, pad int) killmail.Killmail {
	id := strconv.Itoa(1000 + i)
	return killmail.Killmail{ID: int64(1000 + i), SystemID: 30000142,
		JSON: []byte(`{"killmail_id":` + id + `,"solar_system_id":30000142,"pad":"` + strings.Repeat("x", pad) + `"}`)}
}

// An event whose drain finds the socket full is not left in the cork: the
// session's worker writes it once the client reads, even though nothing
// else is published after it.
func TestDrainLeavesAShortWriteToTheWorker(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second})

	// Fill the idle session's socket with filler frames, as earlier bursts
	// would, until a non-blocking write comes up short.
	cc := d.session().cc
	filler := bytes.Repeat([]byte("x"), 16<<10)
	frames := 0
	for {
		if frames++; frames > 10000 {
			t.Fatal("the socket took 160 MB from a client that reads nothing")
		}
		cc.cork()
		if _, err := cc.writeFrame(filler); err != nil {
			t.Fatal(err)
		}
		if ok, err := cc.tryUncork(); err != nil {
			t.Fatal(err)
		} else if !ok {
			break
		}
	}

	d.insert(t, padded(0, 0))
	time.Sleep(200 * time.Millisecond) // the drain finds the socket full

	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	for i := range frames {
		if _, b, err := d.c.Read(ctx); err != nil || len(b) != len(filler) {
			t.Fatalf("filler frame %d of %d: %d bytes, %v", i, frames, len(b), err)
		}
	}
	d.readEvents(t, ctx, 1)
}

// A client that pauses reading while more is published than its socket
// holds (6 MB, where the server's send buffer grows to 4 MB at most) gets
// every event, in order, once it reads again. Published one by one, the
// events reach drainers whose non-blocking write comes up short once the
// socket is full. Published in one batch, they make a drainer hand its
// backlog to the worker.
func TestWebsocketBurstBeyondTheSocketArrivesWhole(t *testing.T) {
	const n, pad = 300, 20 << 10
	t.Run("one by one", func(t *testing.T) {
		d := startDrainTest(t, WebsocketConfig{WriteTimeout: 20 * time.Second, Buffer: 4096})
		for i := range n {
			d.insert(t, padded(i, pad))
			time.Sleep(2 * time.Millisecond) // one drain at a time
		}
		time.Sleep(500 * time.Millisecond) // the server fills the socket and waits
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		d.readEvents(t, ctx, n)
	})
	t.Run("in one batch", func(t *testing.T) {
		d := startDrainTest(t, WebsocketConfig{WriteTimeout: 20 * time.Second, Buffer: 4096})
		var kms []killmail.Killmail
		for i := range n {
			kms = append(kms, padded(i, pad))
		}
		d.insert(t, kms...)
		time.Sleep(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		d.readEvents(t, ctx, n)
	})
}

// The drain queue is first in, first out, and under a load that never
// lets it empty it stays bounded by what waits, not by what went through.
func TestSessionQueueKeepsOrderAndStaysBounded(t *testing.T) {
	var q sessionQueue
	sessions := make([]*session, 1000)
	for i := range sessions {
		sessions[i] = &session{}
	}
	next, want := 0, 0
	for range 200 { // 200 rounds: 1000 in, 990 out; 2,000 waiting at the end
		for range 1000 {
			q.push(sessions[next%len(sessions)])
			next++
		}
		for range 990 {
			if s := q.pop(); s != sessions[want%len(sessions)] {
				t.Fatalf("pop %d: not the session pushed %d-th", want, want)
			}
			want++
		}
	}
	if c := cap(q.items); c > 4*sessionQueueKeep {
		t.Fatalf("capacity %d after 200,000 pushes with 2,000 waiting", c)
	}
	for ; want < next; want++ {
		if s := q.pop(); s != sessions[want%len(sessions)] {
			t.Fatalf("pop %d: not the session pushed %d-th", want, want)
		}
	}
	if q.pop() != nil {
		t.Fatal("pop from an empty queue returned a session")
	}
}

// A drainer never waits on one connection: a client whose full socket
// holds a pong the server is writing (uncorked, under the connection's
// lock) must not hold up the delivery to everyone else.
func TestDrainerDoesNotWaitBehindAStuckControlFrame(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second})
	d.srv.ws.pool.mu.Lock()
	d.srv.ws.pool.max = 1 // every session behind the stuck one
	d.srv.ws.pool.mu.Unlock()
	cc := d.session().cc

	healthy, _, err := websocket.Dial(d.ctx, strings.Replace(d.url, "http", "ws", 1)+"/api/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.CloseNow()
	if err := healthy.Write(d.ctx, websocket.MessageText, []byte(`{"type":"subscribe","systems":[30000142]}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := healthy.Read(d.ctx); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("subscribe: %s %v", b, err)
	}

	// The slow client's connection is held as a pong's write holds it
	// while the socket is full: coder/websocket writes control frames
	// uncorked, under the connection's lock (corkConn.Write), until the
	// socket takes them. Held here for as long as the test needs, not by
	// filling a real socket, whose room comes back whenever the kernel
	// gets to the peer's acknowledgements.
	cc.mu.Lock()
	cc.writing.Store(true)
	held := true
	release := func() {
		if held {
			held = false
			cc.writing.Store(false)
			cc.mu.Unlock()
		}
	}
	defer release()

	// The healthy client gets the event while the slow one's write is
	// still stuck: were the drainer waiting behind it, it never would.
	d.insert(t, padded(0, 0))
	if _, b, err := healthy.Read(d.ctx); err != nil || !strings.Contains(string(b), `"event_id":1,`) {
		t.Fatalf("healthy client: %s %v; want the event while the other connection is stuck", b, err)
	}
	// Once its write goes through, the slow client gets the event too.
	release()
	d.readEvents(t, d.ctx, 1)
}

// Events published while a session waits in the drain line go out with
// the drain that takes it, and leave the session idle: no worker goroutine
// is started for them.
func TestDrainTakesWhatCameWhileInLine(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second})
	s := d.session()
	// In line: claimed for a drainer that has not come yet (once the
	// worker that answered the subscribe is done).
	waitFor(t, "the session never went idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		claimed := !s.working && s.claimLocked()
		if claimed {
			s.pending = false
		}
		return claimed
	})

	// One hand-out, so that nothing comes during the drain. PubSub tells the
	// session, which is in line already.
	d.insert(t, padded(0, 0), padded(1, 0), padded(2, 0))
	waitFor(t, "the session was never told of the events", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pending
	})
	s.drain()
	s.mu.Lock()
	working, pending := s.working, s.pending
	s.mu.Unlock()
	if working || pending {
		t.Fatalf("after the drain: working %v, pending %v; want the session idle", working, pending)
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	d.readEvents(t, ctx, 3)
}

// Events published while a drainer writes a session's earlier ones put the
// session back in line: with events published back to back, every one
// arrives, in order.
//
// The buffer holds all n events: how far the inserts get ahead of this
// reader is up to the scheduler, and a reader that falls more than the
// buffer behind is closed as a slow consumer, which is not what this test
// is about (specs/ws_test.go covers that).
func TestDrainRequeuesWhatCameDuringTheWrite(t *testing.T) {
	const n = 2000
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second, Buffer: n})
	inserted := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := d.svc.Insert(d.ctx, []killmail.Killmail{padded(i, 0)}, nil); err != nil {
				inserted <- err
				return
			}
		}
		inserted <- nil
	}()
	d.readEvents(t, d.ctx, n)
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
}

// An event published while a drainer writes puts the session back in line,
// and the next drain writes it: the write is held until PubSub has told the
// session of the event, so the event comes during the write every time.
func TestDrainRequeuesAnEventPublishedDuringItsWrite(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second})
	s := d.session()
	// Claimed, as for a drainer, once the worker that answered the
	// subscribe is done: nothing else runs the session.
	waitFor(t, "the session never went idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		claimed := !s.working && s.claimLocked()
		if claimed {
			s.pending = false
		}
		return claimed
	})
	d.insert(t, padded(0, 0))
	waitFor(t, "the session was never told of the first event", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pending
	})

	// The drain's write: once it is done, the second event is published
	// and the session told of it before the drain looks again.
	raw := &afterWrite{RawConn: s.cc.raw}
	raw.after = func() {
		d.insert(t, padded(1, 0))
		waitFor(t, "the session was never told of the second event", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.pending
		})
	}
	s.cc.mu.Lock()
	s.cc.raw = raw
	s.cc.mu.Unlock()

	s.drain()
	d.readEvents(t, d.ctx, 2)
}

// afterWrite is a socket whose first write runs after once it is done.
type afterWrite struct {
	syscall.RawConn
	after  func()
	writes atomic.Int32
}

func (a *afterWrite) Write(fn func(fd uintptr) bool) error {
	err := a.RawConn.Write(fn)
	if a.writes.Add(1) == 1 {
		a.after()
	}
	return err
}
