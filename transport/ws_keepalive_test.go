package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawPeer is a websocket client that answers nothing by itself: it
// subscribes, then does only what the test does.
type rawPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRawPeer(t *testing.T, httpURL string) *rawPeer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	handshake := "GET /api/ws HTTP/1.1\r\nHost: killfeed\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, handshake); err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{conn: conn, br: bufio.NewReader(conn)}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(p.br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", res, err)
	}
	p.send(t, `{"type":"subscribe","systems":[30000142]}`)
	if op, b := p.frame(t); op != 0x1 || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("first frame %x %s", op, b)
	}
	return p
}

// send writes a masked text frame (a zero mask key: the payload as is).
func (p *rawPeer) send(t *testing.T, msg string) {
	t.Helper()
	frame := append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...)
	if _, err := p.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// frame reads one short server frame.
func (p *rawPeer) frame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	op, payload, err := p.read()
	if err != nil {
		t.Fatal(err)
	}
	return op, payload
}

func (p *rawPeer) read() (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(p.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[1] >= 126 {
		return 0, nil, errors.New("a long frame")
	}
	payload = make([]byte, hdr[1])
	_, err = io.ReadFull(p.br, payload)
	return hdr[0] & 0x0f, payload, err
}

// A peer that answers nothing, neither the ping nor anything else, is
// dropped once the write timeout after a ping has passed.
func TestKeepaliveDropsASilentPeer(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: 50 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	p := dialRawPeer(t, d.url)
	_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pings := 0
	for {
		op, _, err := p.read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("still connected after %d unanswered pings", pings)
		}
		if err != nil {
			break // the server hung up
		}
		if op != 0x9 {
			t.Fatalf("frame with opcode %x, want only pings", op)
		}
		pings++
	}
	if pings == 0 {
		t.Fatal("dropped without a ping")
	}
}

// Whatever the peer sends answers a ping: one that never sends a pong but
// keeps talking stays connected, and is still pinged.
func TestKeepaliveKeepsAPeerThatTalks(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: 50 * time.Millisecond, WriteTimeout: time.Second})
	p := dialRawPeer(t, d.url)
	_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pings, pongs := 0, 0
	for start := time.Now(); time.Since(start) < 2*time.Second; {
		p.send(t, `{"type":"ping"}`)
		for got := false; !got; {
			switch op, b := p.frame(t); {
			case op == 0x9:
				pings++
			case op == 0x1 && string(b) == `{"type":"pong"}`:
				pongs++
				got = true
			default:
				t.Fatalf("frame %x %s", op, b)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pings < 2 {
		t.Fatalf("%d pings in 2 s at a 50 ms interval and a 1 s timeout", pings)
	}
	t.Logf("%d pings, %d pongs", pings, pongs)
}

// The keepalive's goroutine runs only while sessions are open.
func TestKeepaliveStopsWithTheLastSession(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: 50 * time.Millisecond, WriteTimeout: time.Second})
	k := d.srv.ws.keep
	running := func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.running
	}
	if !running() {
		t.Fatal("no keepalive with a session open")
	}
	p := dialRawPeer(t, d.url)
	_ = d.c.CloseNow()
	_ = p.conn.Close()
	for deadline := time.Now().Add(10 * time.Second); running(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the keepalive still runs with every session closed")
		}
	}
}

// A session that closes with a close frame sends it behind what is left in
// the cork, such as a keepalive ping whose write came up short just before
// the session ended, which no worker would flush any more.
func TestCloseFrameGoesOutBehindACorkedPing(t *testing.T) {
	d := startDrainTest(t, WebsocketConfig{PingInterval: -1, WriteTimeout: 5 * time.Second})
	sess := d.session()
	// What a short ping leaves: the connection corked, a ping in it, no worker.
	sess.cc.mu.Lock()
	sess.cc.corkLocked()
	*sess.cc.pending = appendFrameHeader(*sess.cc.pending, 0x9, 0)
	sess.cc.mu.Unlock()

	go sess.stop(errGoingAway)
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Second) // the close handshake would wait 5 s
	defer cancel()
	_, _, err := d.c.Read(ctx) // answers the ping, then gets the close frame
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read %v, want the close frame with 1001", err)
	}
}

// The pings due at one tick go out a group at a time, in order, the groups
// spread over the span: a thousand connections due together are not pinged
// back to back.
func TestSpreadPacesGroupsOverTheSpan(t *testing.T) {
	const n, span = 5*pingGroup + 3, 120 * time.Millisecond // 6 groups
	start := time.Now()
	var at []time.Duration
	spread(n, span, func(i int) {
		if i != len(at) {
			t.Fatalf("called for %d after %d calls", i, len(at))
		}
		at = append(at, time.Since(start))
	})
	if len(at) != n {
		t.Fatalf("%d calls, want %d", len(at), n)
	}
	for g := 1; g*pingGroup < n; g++ {
		// A group starts no sooner than its share of the span (time.Sleep
		// never returns early; a busy machine only makes it later).
		if first, want := at[g*pingGroup], span*time.Duration(g)/6; first < want {
			t.Errorf("group %d started at %v, before %v", g, first, want)
		}
	}
}
