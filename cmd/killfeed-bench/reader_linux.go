package main

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connReader reads every subscribed connection of the client process from
// one epoll loop per core, each owning its share of the sockets. With ten
// thousand sockets on the server's own two cores, a goroutine per socket
// cost the client two reads per wake-up (the second one finding nothing)
// and a trip through the scheduler; that CPU came out of the server's
// latency. A loop reads a ready socket once and parses it in place.
type connReader struct {
	loops  []*epollLoop
	next   atomic.Uint64
	closed *atomic.Int64
	count  atomic.Int64 // deliveries so far
	stopFl atomic.Bool
	wg     sync.WaitGroup
}

type epollLoop struct {
	r     *connReader
	epfd  int
	conns []atomic.Pointer[epollConn] // by file descriptor
	got   []delivery
	buf   []byte
	join  []byte
}

type epollConn struct {
	fd   int
	scan frameScan
	loop *epollLoop
	at   int64 // when the bytes being parsed were read
}

// epollReadBuffer is what one read takes from a socket: a burst of
// killmails to one subscriber in one read.
const epollReadBuffer = 256 << 10

// epollDeliveries is room for the deliveries of a 30 s replay on each loop,
// set aside up front: a growing record would have the client collect
// garbage while the server is busiest.
const epollDeliveries = 1 << 19

// newConnReader starts one loop per CPU; maxFD bounds the descriptors
// added. The loops wait in epoll_wait, a system call: were there no idle
// P besides theirs, Go's sysmon would take a waiting loop's P away after
// 20 µs and the loop would have to get one back when it wakes, a futex
// each way at every wake-up. Twice as many Ps as loops leaves idle ones.
func newConnReader(maxFD int, closed *atomic.Int64) (*connReader, error) {
	loops := runtime.NumCPU()
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 2*loops))
	r := &connReader{closed: closed}
	for range loops {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			r.stop()
			return nil, err
		}
		l := &epollLoop{r: r, epfd: epfd, conns: make([]atomic.Pointer[epollConn], maxFD), buf: make([]byte, epollReadBuffer),
			got: make([]delivery, 0, epollDeliveries)}
		r.loops = append(r.loops, l)
		r.wg.Add(1)
		go l.run()
	}
	return r, nil
}

// add hands a subscribed connection to a loop: the loop reads a duplicate
// of its socket, and the Go connection is closed.
func (r *connReader) add(c *rawWS) error {
	rc, err := c.conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	if cerr := rc.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	leftover := append([]byte(nil), peekBuffered(c)...)
	_ = c.conn.Close()
	l := r.loops[r.next.Add(1)%uint64(len(r.loops))]
	if fd >= len(l.conns) {
		syscall.Close(fd)
		return errors.New("file descriptor beyond the open-files limit")
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	ec := &epollConn{fd: fd, loop: l}
	// Bytes the handshake's reader took early are parsed, on the loop, in
	// front of the first read.
	ec.scan.carry = leftover
	l.conns[fd].Store(ec)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.conns[fd].Store(nil)
		syscall.Close(fd)
		return err
	}
	return nil
}

// delivered is how many messages the loops have read so far.
func (r *connReader) delivered() int64 { return r.count.Load() }

// stop ends the loops and returns every delivery they recorded.
func (r *connReader) stop() []delivery {
	r.stopFl.Store(true)
	r.wg.Wait()
	var all []delivery
	for _, l := range r.loops {
		all = append(all, l.got...)
		syscall.Close(l.epfd)
	}
	return all
}

func (l *epollLoop) run() {
	defer l.r.wg.Done()
	events := make([]syscall.EpollEvent, 512)
	for !l.r.stopFl.Load() {
		n, err := syscall.EpollWait(l.epfd, events, 50)
		if err != nil && err != syscall.EINTR {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if c := l.conns[ev.Fd].Load(); c != nil {
				c.read()
			}
		}
	}
}

// read takes what the socket holds (level-triggered: a socket with more
// comes back in the next wait) and parses it.
func (c *epollConn) read() {
	n, err := syscall.Read(c.fd, c.loop.buf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	c.at = time.Now().UnixNano()
	if n <= 0 || err != nil {
		c.drop()
		return
	}
	closed, err := c.scan.feed(c.loop.buf[:n], &c.loop.join, c)
	if closed {
		_, _ = syscall.Write(c.fd, closeReply)
	}
	if closed || err != nil {
		c.drop()
	}
}

func (c *epollConn) message(head []byte) {
	c.loop.got = append(c.loop.got, delivery{eventID(head), c.at})
	c.loop.r.count.Add(1)
}

func (c *epollConn) ping(payload []byte) {
	_, _ = syscall.Write(c.fd, pongFrame(payload))
}

// drop forgets a connection the server closed; it counts as closed.
func (c *epollConn) drop() {
	_ = syscall.EpollCtl(c.loop.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	c.loop.conns[c.fd].Store(nil)
	syscall.Close(c.fd)
	c.loop.r.closed.Add(1)
}
