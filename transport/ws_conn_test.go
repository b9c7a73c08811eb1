package transport

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// recordConn records each Write it is given; block, when set, holds a
// Write until it is closed.
type recordConn struct {
	net.Conn
	mu       sync.Mutex
	writes   [][]byte
	deadline time.Time
	closed   bool
	block    chan struct{}
}

func (c *recordConn) Write(p []byte) (int, error) {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *recordConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *recordConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range c.writes {
		out = append(out, string(w))
	}
	return out
}

func equal(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("writes %q, want %q", got, want)
		}
	}
}

func TestCorkConnSendsABurstInOneWrite(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	_, _ = c.Write([]byte("a")) // uncorked: straight through
	c.cork()
	for _, f := range []string{"b", "c", "d"} {
		_, _ = c.Write([]byte(f))
	}
	equal(t, rc.got(), "a")
	if n := c.buffered(); n != 3 {
		t.Fatalf("buffered %d, want 3", n)
	}
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, rc.got(), "a", "bcd")
	if !rc.deadline.IsZero() {
		t.Fatalf("write deadline %v left set after the flush", rc.deadline)
	}
	_, _ = c.Write([]byte("e"))
	equal(t, rc.got(), "a", "bcd", "e")
}

func TestCorkConnFlushStaysCorked(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	_, _ = c.Write([]byte("a"))
	if err := c.flush(time.Second); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("b"))
	equal(t, rc.got(), "a")
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, rc.got(), "a", "b")
}

func TestCorkConnExpiredGraceWritesNothing(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	_, _ = c.Write([]byte("a"))
	if err := c.uncork(0); err == nil {
		t.Fatal("a flush with no time left succeeded")
	}
	equal(t, rc.got())
}

// A close frame that coder/websocket writes while the session is corked
// goes out before the connection closes.
func TestCorkConnCloseSendsWhatIsCorked(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	_, _ = c.Write([]byte("event"))
	_, _ = c.Write([]byte("close"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	equal(t, rc.got(), "eventclose")
	if !rc.closed {
		t.Fatal("not closed")
	}
}

// Close does not wait for a flush in progress: closing is what ends a
// write stuck on a peer that does not read.
func TestCorkConnCloseDoesNotWaitForAFlush(t *testing.T) {
	rc := &recordConn{block: make(chan struct{})}
	c := &corkConn{Conn: rc}
	c.cork()
	_, _ = c.Write([]byte("a"))
	flushed := make(chan error)
	go func() { flushed <- c.flush(time.Minute) }()
	for c.mu.TryLock() { // until the flush holds the lock
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the flush")
	}
	close(rc.block)
	if err := <-flushed; err == nil {
		t.Fatal("the flush on a closed connection succeeded")
	}
}

// Bytes lost when another goroutine closes the connection (the reader
// after a reset, a failed ping, shutdown) make every later flush fail: the
// session must not advance a client_id offset past an event it never sent.
func TestCorkConnLostBytesStick(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = peer.(*net.TCPConn).SetLinger(0) // the client goes away with a reset
	_ = peer.Close()
	time.Sleep(100 * time.Millisecond)

	c := &corkConn{Conn: raw}
	c.cork()
	_, _ = c.Write([]byte("an event for a client_id follow"))
	_ = c.Close()
	if err := c.flush(time.Second); err == nil {
		t.Error("flush after the close lost the corked bytes succeeded")
	}
	if err := c.uncork(time.Second); err == nil {
		t.Error("uncork after the close lost the corked bytes succeeded")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("write after the close succeeded")
	}
}
