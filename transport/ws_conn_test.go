package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/killfeed/killfeed/eventlog"
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

// readFrame parses one unmasked server frame (RFC 6455 section 5.2).
func readFrame(t *testing.T, b []byte) (op byte, payload, rest []byte) {
	t.Helper()
	if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
		t.Fatalf("not a final unmasked frame: % x", b[:min(len(b), 16)])
	}
	n, off := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		n, off = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		n, off = binary.BigEndian.Uint64(b[2:]), 10
	}
	if uint64(len(b)-off) < n {
		t.Fatalf("frame of %d bytes, %d left", n, len(b)-off)
	}
	return b[0] & 0x0f, b[off : off+int(n)], b[off+int(n):]
}

// textFrames reads b as whole text frames and returns their payloads.
func textFrames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		var op byte
		var p []byte
		if op, p, b = readFrame(t, b); op != 0x1 {
			t.Fatalf("frame %d has op %d, want a text frame", len(out), op)
		}
		out = append(out, p)
	}
	return out
}

// uncorkOneWrite uncorks c and returns the one write its burst went out in.
func uncorkOneWrite(t *testing.T, c *corkConn, rc *recordConn) []byte {
	t.Helper()
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	got := rc.got()
	if len(got) != 1 {
		t.Fatalf("%d writes, want the burst in one", len(got))
	}
	return []byte(got[0])
}

// Frames the session builds itself carry every length encoding correctly.
func TestCorkConnFramesEveryLength(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	lengths := []int{0, 1, 125, 126, 127, 65535, 65536, 300000}
	c.cork()
	for _, n := range lengths {
		if _, err := c.writeFrame(bytes.Repeat([]byte{'x'}, n)); err != nil {
			t.Fatal(err)
		}
	}
	frames := textFrames(t, uncorkOneWrite(t, c, rc))
	if len(frames) != len(lengths) {
		t.Fatalf("%d frames, want %d", len(frames), len(lengths))
	}
	for i, n := range lengths {
		if p := frames[i]; len(p) != n || bytes.Count(p, []byte{'x'}) != n {
			t.Fatalf("frame of %d bytes, want %d", len(p), n)
		}
	}
	if _, err := c.writeFrame([]byte("x")); err == nil {
		t.Fatal("an uncorked writeFrame succeeded: session frames go out in bursts")
	}
}

// Nothing follows a close frame: once coder/websocket wrote one, data
// frames are refused, and what was queued before it still goes out first.
func TestCorkConnNoDataAfterTheCloseFrame(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	if _, err := c.writeFrame([]byte("before")); err != nil {
		t.Fatal(err)
	}
	closeFrame := []byte{wsCloseFrame, 2, 0x03, 0xe8}
	if _, err := c.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	if _, err := c.writeFrame([]byte("after")); err == nil {
		t.Fatal("a data frame behind the close frame was queued")
	}
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	got := []byte(strings.Join(rc.got(), ""))
	_, p, rest := readFrame(t, got)
	if string(p) != "before" || !bytes.Equal(rest, closeFrame) {
		t.Fatalf("sent % x, want the event then the close frame", got)
	}
}

// tcpPair is a connected loopback pair whose server side has a small send
// buffer and whose client side reads nothing until told.
func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server = sc.(*net.TCPConn)
	_ = server.SetWriteBuffer(16 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(16 << 10)
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

// tryUncork never blocks: a burst larger than the socket takes stays
// corked, in order, and the blocking uncork sends the rest once the peer
// reads.
func TestCorkConnTryUncorkDoesNotBlock(t *testing.T) {
	server, client := tcpPair(t)
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c := &corkConn{Conn: server, raw: raw}
	var want []byte
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("the socket took 1000 bursts of 64 KiB from a peer that reads nothing")
		}
		burst := bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10)
		want = append(want, burst...)
		c.cork()
		if _, err := c.Write(burst); err != nil {
			t.Fatal(err)
		}
		done := make(chan bool)
		go func() { ok, _ := c.tryUncork(); done <- ok }()
		var ok bool
		select {
		case ok = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("tryUncork blocked on a full socket")
		}
		if !ok {
			break
		}
	}
	if c.buffered() == 0 {
		t.Fatal("tryUncork reported a short write but kept nothing")
	}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(client, int64(len(want)))); got <- b }()
	if err := c.uncork(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes, not the %d written in order", len(b), len(want))
	}
}

// Without a raw socket (a TLS connection, say) tryUncork writes nothing and
// leaves the flush to the blocking path.
func TestCorkConnTryUncorkWithoutRawSocket(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	_, _ = c.Write([]byte("a"))
	if ok, err := c.tryUncork(); ok || err != nil {
		t.Fatalf("tryUncork = %v, %v; want false, nil", ok, err)
	}
	equal(t, rc.got())
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, rc.got(), "a")
}

// A ping goes out at once: straight through when nothing is corked, and
// behind the corked frames, without waiting for their writer, when a
// burst is being written; the writer's cork stays.
func TestCorkConnPingGoesOutAtOnce(t *testing.T) {
	c, _, read := corkPair(t)
	ping := "\x89\x00"

	if sent, ok, err := c.ping(); !sent || !ok || err != nil {
		t.Fatalf("ping = %v, %v, %v", sent, ok, err)
	}
	if got := read(2); got != ping {
		t.Fatalf("read %q, want a ping frame", got)
	}
	if c.corked {
		t.Fatal("corked after a ping on an idle connection")
	}

	c.cork()
	if _, err := c.writeFrame([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if sent, ok, err := c.ping(); !sent || !ok || err != nil {
		t.Fatalf("ping while corked = %v, %v, %v", sent, ok, err)
	}
	if got := read(5); got != "\x81\x01a"+ping {
		t.Fatalf("read %q, want the corked frame, then the ping", got)
	}
	if !c.corked {
		t.Fatal("the ping uncorked a burst under way")
	}
	if _, err := c.writeFrame([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.tryUncork(); !ok || err != nil {
		t.Fatalf("tryUncork = %v, %v", ok, err)
	}
	if got := read(3); got != "\x81\x01b" {
		t.Fatalf("read %q after the ping", got)
	}
}

// A shared frame (writeFramed) is written from where it is when it is all
// that is corked, and keeps its place in line otherwise: behind what was
// corked before it, before what comes after it (frames, a ping, a control
// frame from coder/websocket), and, when the socket takes only part of
// it, with the rest sent by the blocking flush; nothing is written twice
// and the frame is never modified.
func TestCorkConnSharedFrameKeepsItsPlace(t *testing.T) {
	c, client, read := corkPair(t)
	shared := appendFrameHeader(nil, 0x1, 1)
	shared = append(shared, 's')
	frozen := bytes.Clone(shared)
	ping := "\x89\x00"

	// Alone: one write of the shared bytes.
	c.cork()
	if n, err := c.writeFramed(shared); n != 3 || err != nil {
		t.Fatalf("writeFramed = %d, %v", n, err)
	}
	if c.buffered() != 3 {
		t.Fatalf("buffered %d, want 3", c.buffered())
	}
	if ok, err := c.tryUncork(); !ok || err != nil {
		t.Fatalf("tryUncork = %v, %v", ok, err)
	}
	if got := read(3); got != "\x81\x01s" {
		t.Fatalf("read %q", got)
	}

	// Behind a frame, before a frame, a ping and a control frame.
	c.cork()
	_, _ = c.writeFrame([]byte("a"))
	_, _ = c.writeFramed(shared)
	_, _ = c.writeFrame([]byte("b"))
	_, _ = c.writeFramed(shared)
	if sent, _, err := c.ping(); !sent || err != nil {
		t.Fatalf("ping = %v, %v", sent, err)
	}
	if got := read(14); got != "\x81\x01a\x81\x01s\x81\x01b\x81\x01s"+ping {
		t.Fatalf("read %q", got)
	}
	_, _ = c.writeFramed(shared)
	_, _ = c.writeFrame([]byte("c"))
	_, _ = c.writeFramed(shared)
	if _, err := c.Write([]byte("\x8a\x00")); err != nil { // a pong, corked
		t.Fatal(err)
	}
	if ok, err := c.tryUncork(); !ok || err != nil {
		t.Fatalf("tryUncork = %v, %v", ok, err)
	}
	if got := read(11); got != "\x81\x01s\x81\x01c\x81\x01s\x8a\x00" {
		t.Fatalf("read %q", got)
	}

	// Alone, then a ping; alone, then a control frame.
	c.cork()
	_, _ = c.writeFramed(shared)
	if sent, _, err := c.ping(); !sent || err != nil {
		t.Fatalf("ping = %v, %v", sent, err)
	}
	if got := read(5); got != "\x81\x01s"+ping {
		t.Fatalf("read %q", got)
	}
	_, _ = c.writeFramed(shared)
	_, _ = c.Write([]byte("\x8a\x00"))
	if ok, err := c.tryUncork(); !ok || err != nil {
		t.Fatalf("tryUncork = %v, %v", ok, err)
	}
	if got := read(5); got != "\x81\x01s\x8a\x00" {
		t.Fatalf("read %q", got)
	}

	// Larger than the socket takes: the rest waits, then goes out whole.
	big := appendFrameHeader(nil, 0x1, 8<<20)
	big = append(big, bytes.Repeat([]byte{'x'}, 8<<20)...)
	c.cork()
	_, _ = c.writeFramed(big)
	if ok, err := c.tryUncork(); ok || err != nil {
		t.Fatalf("tryUncork of 8 MiB to a peer that reads nothing = %v, %v", ok, err)
	}
	left := c.buffered()
	if left == 0 || left >= len(big) {
		t.Fatalf("%d bytes left of %d", left, len(big))
	}
	_, _ = c.writeFramed(shared)
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(client, int64(len(big)+3))); got <- b }()
	if err := c.uncork(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append(bytes.Clone(big), shared...)) {
		t.Fatalf("peer read %d bytes, not the big frame then the shared one", len(b))
	}
	if !bytes.Equal(shared, frozen) {
		t.Fatal("the shared frame was modified")
	}
}

// A ping never waits for the connection's lock (a write under way): the
// keepalive, which pings every connection from one goroutine, tries again
// at its next tick.
func TestCorkConnPingDoesNotWaitForTheLock(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.mu.Lock()
	sent, _, err := c.ping()
	c.mu.Unlock()
	if sent || err != nil {
		t.Fatalf("ping under a held lock = %v, %v; want not sent", sent, err)
	}
	if c.pending != nil {
		t.Fatal("a ping that was not sent left bytes")
	}
}

// Without a raw socket the ping waits corked for the worker's flush; after
// a close frame there is none.
func TestCorkConnPingWithoutRawSocketAndAfterClose(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	if sent, ok, err := c.ping(); !sent || ok || err != nil {
		t.Fatalf("ping = %v, %v, %v; want true, false, nil", sent, ok, err)
	}
	equal(t, rc.got())
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, rc.got(), "\x89\x00")
	if _, err := c.Write([]byte{wsCloseFrame, 0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ping(); err == nil {
		t.Fatal("a ping after the close frame")
	}
	equal(t, rc.got(), "\x89\x00", "\x88\x00")
}

// BenchmarkCorkConnWriteSome is the drain's write: a frame corked, then one
// non-blocking write to a loopback socket whose peer reads. It reports the
// allocations per write (none: the write callback is bound once, pooled).
func BenchmarkCorkConnWriteSome(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	sc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	c := &corkConn{Conn: sc, raw: raw}
	frame := nativeEventFrame(eventlog.Event{ID: 1, SystemID: 30000142, Killmail: bytes.Repeat([]byte{'x'}, 1000)}) // a killmail's size
	for _, bc := range []struct {
		name   string
		frames int
	}{{"one", 1}, {"fight", 25}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(bc.frames * len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				c.cork()
				for range bc.frames {
					if _, err := c.writeFramed(frame); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := c.tryUncork(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A live event framed once for every connection (nativeEventFrame, queued
// with writeFramed) carries every length encoding correctly, and reads as
// the frame the session would have built for its connection alone.
func TestNativeEventFrameEveryLength(t *testing.T) {
	empty := nativeProtocol{}.event(nil, nil, eventlog.Event{ID: 7, SystemID: 30000142, Killmail: []byte(`""`)})
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	c.cork()
	var want [][]byte
	for _, size := range []int{len(empty), 125, 126, 127, 65535, 65536, 300000} {
		ev := eventlog.Event{ID: 7, SystemID: 30000142, Killmail: []byte(`"` + strings.Repeat("x", size-len(empty)) + `"`)}
		want = append(want, nativeProtocol{}.event(nil, nil, ev))
		if len(want[len(want)-1]) != size {
			t.Fatalf("payload of %d bytes, want %d", len(want[len(want)-1]), size)
		}
		if _, err := c.writeFramed(nativeEventFrame(ev)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.writeFrame([]byte("between")); err != nil {
			t.Fatal(err)
		}
	}
	frames := textFrames(t, uncorkOneWrite(t, c, rc))
	if len(frames) != 2*len(want) {
		t.Fatalf("%d frames, want %d", len(frames), 2*len(want))
	}
	for i, w := range want {
		if p := frames[2*i]; !bytes.Equal(p, w) {
			t.Fatalf("frame of %d bytes, want %d: %.40q", len(p), len(w), p)
		}
		if p := frames[2*i+1]; string(p) != "between" {
			t.Fatalf("frame %.40q after the event, want the text frame written next", p)
		}
	}
}

// corkPair is a corkConn over one end of a loopback TCP pair, the other
// end, and a read of n bytes from it.
func corkPair(t *testing.T) (*corkConn, net.Conn, func(n int) string) {
	t.Helper()
	server, client := tcpPair(t)
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	read := func(n int) string {
		t.Helper()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(client, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return &corkConn{Conn: server, raw: raw}, client, read
}
