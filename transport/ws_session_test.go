package transport_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/transport"
)

// Keepalive pings and acknowledgements are not held in the cork while the
// session waits on a slow store: a healthy client that keeps reading is
// not dropped for a pong that never left the server.
func TestWebsocketPingNotHeldBehindASlowStore(t *testing.T) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Stop(); _ = log.Close() }()
	srv := transport.New(svc, transport.Config{Websocket: transport.WebsocketConfig{
		WriteTimeout: time.Second, PingInterval: 100 * time.Millisecond,
	}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	frames := make(chan string, 100)
	readErr := make(chan error, 1)
	go func() { // a healthy client: always reading, so pings are answered
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			frames <- string(b)
		}
	}()

	// Two subscribes, each waiting ~800 ms for the store: together longer
	// than the 1 s a ping may wait for its pong.
	stall := func() { svc.System().Root.Send(svc.Store(), &actors.Stall{D: 800 * time.Millisecond}) }
	stall()
	time.Sleep(20 * time.Millisecond)
	for _, f := range []string{
		`{"type":"subscribe","systems":[30000142]}`,
		`{"type":"subscribe","systems":[30002187]}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	stall() // behind the first subscribe's read, ahead of the second's

	got := 0
	var quiet <-chan time.Time
	for {
		select {
		case f := <-frames:
			if !strings.Contains(f, `"subscribed"`) {
				t.Fatalf("unexpected frame %s", f)
			}
			if got++; got == 2 {
				quiet = time.After(500 * time.Millisecond) // a few more pings
			}
		case err := <-readErr:
			t.Fatalf("dropped after %d acknowledgements: %v (status %d)", got, err, websocket.CloseStatus(err))
		case <-quiet:
			return
		case <-ctx.Done():
			t.Fatalf("%d acknowledgements", got)
		}
	}
}

// A client that pauses reading while more is published than its socket
// holds gets every event, in order, once it reads again. Published one by
// one, the events reach drainers whose non-blocking write comes up short
// once the socket is full: the worker must flush the rest. Published in
// one batch, they make a drainer hand its backlog to the worker.
func TestWebsocketBurstBeyondTheSocketArrivesWhole(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n, pad int
		batch  bool
	}{
		{"one by one", 300, 20 << 10, false},
		{"in one batch", 300, 20 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, err := eventlog.Open(eventlog.Config{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := actors.Start(log, false, actors.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { svc.Stop(); _ = log.Close() }()
			srv := transport.New(svc, transport.Config{Websocket: transport.WebsocketConfig{
				WriteTimeout: 20 * time.Second, Buffer: 4096,
			}})
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A small receive buffer: loopback autotuning may otherwise take
			// tens of megabytes before the socket is full.
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

			// More than the socket holds while the client reads nothing: 6 MB,
			// where the server's send buffer grows to 4 MB at most.
			pad := strings.Repeat("x", tc.pad)
			var kms []killmail.Killmail
			for i := range tc.n {
				kms = append(kms, killmail.Killmail{ID: int64(1000 + i), SystemID: 30000142,
					JSON: []byte(`{"killmail_id":` + strconv.Itoa(1000+i) + `,"solar_system_id":30000142,"pad":"` + pad + `"}`)})
				if tc.batch && i < tc.n-1 {
					continue
				}
				if _, err := svc.Insert(ctx, kms, nil); err != nil {
					t.Fatal(err)
				}
				kms = kms[:0]
				time.Sleep(2 * time.Millisecond) // one drain at a time
			}
			time.Sleep(500 * time.Millisecond) // the server fills the socket and waits

			readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var last uint64
			for i := range tc.n {
				_, b, err := c.Read(readCtx)
				if err != nil {
					t.Fatalf("after %d of %d events: %v", i, tc.n, err)
				}
				var ev struct {
					EventID uint64 `json:"event_id"`
				}
				if err := json.Unmarshal(b, &ev); err != nil || ev.EventID != last+1 {
					t.Fatalf("event %d: event_id %d after %d (%v)", i, ev.EventID, last, err)
				}
				last = ev.EventID
			}
		})
	}
}
