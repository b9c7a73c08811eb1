package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/transport"
)

// The load client must see every pushed event with its id, answer the
// server's keepalive pings (or the server drops it), and notice a close.
func TestRawWSAgainstKillfeed(t *testing.T) {
	a, target, ctx := startPinging(t)
	km := fixture.Killmails()[0]
	c := subscribeRaw(ctx, t, target, km.SystemID)
	var head [64]byte

	got := make(chan uint64)
	go func() {
		defer close(got)
		for {
			n, _, err := c.next(head[:])
			if err != nil {
				return
			}
			got <- eventID(head[:n])
		}
	}()
	for i := range 3 {
		time.Sleep(100 * time.Millisecond) // several ping intervals: a missed pong would drop us
		km.ID = 5_000_000_000 + int64(i)
		res, err := a.Actors().Insert(ctx, []killmail.Killmail{km}, nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case id, ok := <-got:
			if !ok || id != res[0].EventID {
				t.Fatalf("got event %d (open %v), want %d", id, ok, res[0].EventID)
			}
		case <-ctx.Done():
			t.Fatal("no event")
		}
	}

	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-got:
		if ok {
			t.Fatal("an event after shutdown")
		}
	case <-ctx.Done():
		t.Fatal("the close went unnoticed")
	}
	var ne net.Error
	if _, _, err := c.next(head[:]); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("next after close: %v", err)
	}
}

// startPinging starts killfeed pinging every 20 ms, so that a client that
// does not answer is dropped within the test; it returns the service, its
// websocket URL and the test's context.
func startPinging(t *testing.T) (*app.App, string, context.Context) {
	t.Helper()
	a, err := app.Start(app.Config{
		Listen: "127.0.0.1:0", Storage: app.StorageMemory,
		Websocket: transport.WebsocketConfig{PingInterval: 20 * time.Millisecond, WriteTimeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() {
		_ = a.Shutdown(ctx)
		cancel()
	})
	return a, "ws" + strings.TrimPrefix(a.URL(), "http") + "/api/ws", ctx
}

// subscribeRaw dials target and subscribes to system.
func subscribeRaw(ctx context.Context, t *testing.T, target string, system int64) *rawWS {
	t.Helper()
	c, err := dialRaw(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.writeText([]byte(`{"type":"subscribe","systems":[` + strconv.FormatInt(system, 10) + `]}`)); err != nil {
		t.Fatal(err)
	}
	var head [64]byte
	n, _, err := c.next(head[:])
	if err != nil || !strings.Contains(string(head[:n]), `"subscribed"`) {
		t.Fatalf("first frame %q, %v", head[:n], err)
	}
	return c
}
