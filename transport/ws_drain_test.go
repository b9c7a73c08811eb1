package transport

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
)

// An event whose drain finds the socket full is not left in the cork: the
// session's worker writes it once the client reads, even though nothing
// else is published after it.
func TestDrainLeavesAShortWriteToTheWorker(t *testing.T) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Stop(); _ = log.Close() }()
	srv := New(svc, Config{Websocket: WebsocketConfig{PingInterval: -1, WriteTimeout: 20 * time.Second}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","systems":[30000142]}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("subscribe: %s %v", b, err)
	}

	// Fill the idle session's socket with filler frames, as earlier bursts
	// would, until a non-blocking write comes up short.
	var cc *corkConn
	srv.ws.mu.Lock()
	for wc := range srv.ws.conns {
		cc = wc.sess.cc
	}
	srv.ws.mu.Unlock()
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

	km := killmail.Killmail{ID: 1, SystemID: 30000142, JSON: []byte(`{"killmail_id":1,"solar_system_id":30000142}`)}
	if _, err := svc.Insert(ctx, []killmail.Killmail{km}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the drain finds the socket full

	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range frames {
		if _, b, err := c.Read(readCtx); err != nil || len(b) != len(filler) {
			t.Fatalf("filler frame %d of %d: %d bytes, %v", i, frames, len(b), err)
		}
	}
	_, b, err := c.Read(readCtx)
	if err != nil || !strings.Contains(string(b), `"event_id":1,`) {
		t.Fatalf("after the filler: %s %v; want the event", b, err)
	}
}
