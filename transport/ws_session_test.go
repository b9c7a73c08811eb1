package transport

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/actors"
)

// Keepalive pings and acknowledgements are not held in the cork while the
// session waits on a slow store: a healthy client that keeps reading is
// not dropped for a pong that never left the server.
func TestWebsocketPingNotHeldBehindASlowStore(t *testing.T) {
	svc := startService(t)
	srv := New(svc, Config{Websocket: WebsocketConfig{
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
