package transport

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffer sizes of a websocket connection. net/http hands a hijacked
// connection a 4 KiB reader and a 4 KiB writer; with ten thousand idle
// subscribers that is most of their memory. Client frames are small, and
// server frames are gathered in a corkConn while a burst is written, so
// coder/websocket only needs room for a frame header and a control frame.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 256
	// wsFlushAt is how many corked bytes are written out without waiting
	// for the end of the burst (a replay of many events).
	wsFlushAt = 64 << 10
	// wsCorkKeep is the largest cork buffer returned to the pool.
	wsCorkKeep = 256 << 10
	// wsCloseFlush bounds the flush of corked frames when the connection
	// closes (coder/websocket answers a client's close frame, then closes).
	wsCloseFlush = 100 * time.Millisecond
)

// hijackWriter is the ResponseWriter handed to websocket.Accept: it keeps
// the hijacked connection, wrapped in a corkConn, with small buffers.
type hijackWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &corkConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		cc.raw, _ = sc.SyscallConn() // nil for TLS: no non-blocking writes
	}
	// Bytes the client sent right behind its handshake are in net/http's
	// reader: move them into the small one's buffer, where Accept looks.
	size := wsReadBuffer
	var src io.Reader = cc
	early := brw.Reader.Buffered()
	if early > 0 {
		b, _ := brw.Reader.Peek(early)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), cc)
		size = max(size, early)
	}
	r := bufio.NewReaderSize(src, size)
	if early > 0 {
		if _, err := r.Peek(early); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	w.conn = cc
	return cc, bufio.NewReadWriter(r, bufio.NewWriterSize(cc, wsWriteBuffer)), nil
}

// corkConn is a websocket's connection. While corked, writes wait in
// memory and flush sends them with one system call: a session writing a
// burst of events pays one write, not one per frame. Uncorked writes
// (coder/websocket's pongs and close frames outside a burst) go straight
// through. The first failure sticks: once bytes were lost, every later
// Write, flush and uncork fails, so nothing that counts on earlier frames
// having been sent (a client_id offset) goes ahead.
//
// The session frames its data messages itself (writeFrame): it sends the
// same few kinds of text frame to thousands of connections, and
// coder/websocket's writer costs more per frame than the copy. So does
// the keepalive ping (see ping). The other control frames, pongs and the
// close, come from coder/websocket, whose writer hands each one over in one
// Write. Once a close frame went through, nothing more is framed here:
// nothing may follow it.
type corkConn struct {
	net.Conn
	raw     syscall.RawConn // for tryUncork; nil when not a socket
	mu      sync.Mutex
	corked  bool
	pending *[]byte // from corkBuffers while corked
	// shared, when set, is what is corked instead of pending (then empty):
	// one whole frame that others share (writeFramed), written from where
	// it is rather than copied, since a drain usually writes one event.
	shared    []byte
	err       error         // sticky
	closeSent bool          // a close frame went through
	writing   atomic.Bool   // the lock holder is writing to the socket
	reads     atomic.Uint64 // Reads that returned bytes: the keepalive's sign of life
}

// wsCloseFrame is the first byte of an unfragmented close frame.
const wsCloseFrame = 0x80 | 0x8

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(p) > 0 && p[0] == wsCloseFrame {
		c.closeSent = true
	}
	if c.corked {
		c.unshareLocked()
		*c.pending = append(*c.pending, p...)
		return len(p), nil
	}
	c.writing.Store(true)
	defer c.writing.Store(false)
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// writeFrame queues one unfragmented text frame; it must be corked. It
// returns how many bytes wait.
func (c *corkConn) writeFrame(payload []byte) (int, error) {
	return c.queue(payload, true)
}

// writeFramed queues frame, a whole frame built with appendFrameHeader,
// which nobody modifies (it may be written from where it is, after
// writeFramed returns); it must be corked. It returns how many bytes wait.
func (c *corkConn) writeFramed(frame []byte) (int, error) {
	return c.queue(frame, false)
}

// unshareLocked copies the shared frame into pending, before anything is
// added behind it.
func (c *corkConn) unshareLocked() {
	if c.shared != nil {
		*c.pending = append(*c.pending, c.shared...)
		c.shared = nil
	}
}

func (c *corkConn) queue(b []byte, header bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closeSent || !c.corked:
		return 0, errClosed
	}
	if !header && c.shared == nil && len(*c.pending) == 0 {
		c.shared = b
		return len(b), nil
	}
	c.unshareLocked()
	p := *c.pending
	if header {
		p = appendFrameHeader(p, 0x1, len(b))
	}
	*c.pending = append(p, b...)
	return len(*c.pending), nil
}

// appendFrameHeader appends the header of an unmasked, final frame of op
// with an n-byte payload (RFC 6455 section 5.2).
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// tryUncork writes what is corked with one non-blocking write and uncorks.
// It reports false, still corked with what is left, when the socket took
// less, or when it could not try: no raw socket, or the lock is held (a
// control frame or Close under way). Only a failed write is an error; the
// caller then flushes with uncork, which blocks within a deadline.
func (c *corkConn) tryUncork() (bool, error) {
	if !c.mu.TryLock() {
		return false, nil
	}
	defer c.mu.Unlock()
	done, err := c.writeSomeLocked()
	if done {
		c.uncorkLocked()
	}
	return done, err
}

// trySend writes what is corked with one non-blocking write and stays
// corked. It reports whether nothing is left: false when the socket took
// less, and when it could not try (see tryUncork).
func (c *corkConn) trySend() (bool, error) {
	if !c.mu.TryLock() {
		return false, nil
	}
	defer c.mu.Unlock()
	return c.writeSomeLocked()
}

// writeSomeLocked writes what is corked with one non-blocking write, keeps
// what the socket did not take, and reports whether nothing is left.
func (c *corkConn) writeSomeLocked() (bool, error) {
	if c.err != nil {
		return false, c.err
	}
	if c.shared == nil && (c.pending == nil || len(*c.pending) == 0) {
		return true, nil
	}
	if c.raw == nil {
		return false, nil
	}
	b := c.shared
	if b == nil {
		b = *c.pending
	}
	w := rawWrites.Get().(*rawWrite)
	w.b = b
	err := c.raw.Write(w.fn)
	n, werr := w.n, w.err
	*w = rawWrite{fn: w.fn}
	rawWrites.Put(w)
	if err == nil && werr != nil && werr != syscall.EAGAIN && werr != syscall.EINTR {
		err = werr
	}
	if err != nil {
		c.err = err
		return false, err
	}
	n = max(n, 0)
	if c.shared != nil {
		c.shared = nil
		*c.pending = append((*c.pending)[:0], b[n:]...) // the rest waits in ours
	} else {
		*c.pending = append(b[:0], b[n:]...)
	}
	return n == len(b), nil
}

// rawWrite is one attempt at a non-blocking write, with its callback bound
// once: a closure per write would cost three allocations.
type rawWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var rawWrites = sync.Pool{New: func() any {
	w := &rawWrite{}
	w.fn = w.write
	return w
}}

func (w *rawWrite) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true // one attempt: never wait for the socket here
}

// ping sends a ping frame behind what is corked, without waiting: with one
// non-blocking write, or else by the session's worker, which it asks for by
// reporting done false (still corked with what is left). It never holds a
// ping in memory while the socket has room, whatever the session is waiting
// on. sent is false when the lock is held (a write under way): the caller
// tries again later rather than wait, since it pings many connections.
func (c *corkConn) ping() (sent, done bool, err error) {
	if !c.mu.TryLock() {
		return false, false, nil
	}
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return true, false, c.err
	case c.closeSent:
		return true, false, errClosed
	}
	held := c.corked // its writer sends what is left
	c.corkLocked()
	c.unshareLocked()
	*c.pending = appendFrameHeader(*c.pending, 0x9, 0)
	done, err = c.writeSomeLocked()
	if done && !held {
		c.uncorkLocked()
	}
	return true, done, err
}

// Read counts what arrives: any byte from the peer answers a ping.
func (c *corkConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

// Close sends what is corked first, so that frames written before the
// close, such as the answer to a client's close frame, are not lost; but
// it does not wait for a socket write under way, which the close is then
// meant to end.
func (c *corkConn) Close() error {
	for {
		if c.mu.TryLock() {
			_ = c.flushLocked(wsCloseFlush)
			c.err = cmp.Or(c.err, net.ErrClosed)
			c.mu.Unlock()
			break
		}
		if c.writing.Load() {
			break
		}
		runtime.Gosched() // a Write or cork holds the lock for a moment
	}
	return c.Conn.Close()
}

// tryCork corks unless the lock is held, which it may be for long: an
// uncorked control frame (coder/websocket's pong or close) can be waiting
// in a socket write under it.
func (c *corkConn) tryCork() bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	c.corkLocked()
	return true
}

// cork holds writes until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corkLocked()
	c.mu.Unlock()
}

func (c *corkConn) corkLocked() {
	c.corked = true
	if c.pending == nil {
		c.pending = corkBuffers.Get().(*[]byte)
	}
}

// buffered is how many bytes wait.
func (c *corkConn) buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return 0
	}
	return len(*c.pending) + len(c.shared)
}

// flush writes what waits, within timeout, and stays corked.
func (c *corkConn) flush(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked(timeout)
}

// uncork flushes and lets later writes go straight through.
func (c *corkConn) uncork(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked(timeout)
	c.uncorkLocked()
	return err
}

func (c *corkConn) uncorkLocked() {
	c.corked, c.shared = false, nil
	if c.pending != nil {
		if cap(*c.pending) <= wsCorkKeep {
			*c.pending = (*c.pending)[:0]
			corkBuffers.Put(c.pending)
		}
		c.pending = nil
	}
}

func (c *corkConn) flushLocked(timeout time.Duration) error {
	if c.err != nil {
		return c.err
	}
	if c.pending != nil {
		c.unshareLocked() // a blocking write: one copy is nothing beside it
	}
	if c.pending == nil || len(*c.pending) == 0 {
		return nil
	}
	b := *c.pending
	*c.pending = b[:0]
	if timeout <= 0 {
		c.err = errClosed
		return c.err
	}
	c.writing.Store(true)
	defer c.writing.Store(false)
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		c.err = err
		return err
	}
	_, err := c.Conn.Write(b)
	if derr := c.Conn.SetWriteDeadline(time.Time{}); err == nil {
		err = derr
	}
	c.err = err
	return err
}
