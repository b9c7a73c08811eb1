package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
)

// floor is the least work a websocket fan-out can do, to show what the
// machine itself allows: a bare RFC 6455 handshake, each event framed once
// (with the names killfeed adds, see referenceBody) and appended to its
// subscribers' buffers, and GOMAXPROCS flushers writing
// each waiting connection's bytes with one write, in the order connections
// became ready. No websocket library, no log, no actors, no pings, no
// slow-consumer policy. A subscriber follows systems, corporations or
// alliances: a killmail's parties are read only when some subscriber
// follows a corporation or an alliance, then each subscriber keyed by one
// of its ids gets the killmail once.
type floor struct {
	ln    net.Listener
	dirty chan *floorConn

	mu      sync.Mutex
	nextID  uint64
	subs    map[followKey][]*floorConn
	parties int // subscribers following corporations or alliances
	keys    []followKey
	conns   []net.Conn
	closed  bool
	names   *names.Renderer // see referenceBody
}

type floorConn struct {
	conn    net.Conn
	mu      sync.Mutex
	pending []byte
	queued  bool
	last    uint64 // the last event appended, to push a killmail once
}

func startFloor() (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &floor{ln: ln, dirty: make(chan *floorConn, 1<<20), subs: map[followKey][]*floorConn{}, names: referenceNames()}
	go f.accept()
	var flushers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		flushers.Go(f.flush)
	}
	return &target{
		wsURL:  "ws://" + ln.Addr().String() + "/",
		local:  true,
		insert: f.publish,
		stop: func() {
			_ = ln.Close()
			f.mu.Lock()
			f.closed = true
			for _, c := range f.conns {
				_ = c.Close()
			}
			f.mu.Unlock()
			close(f.dirty)
			flushers.Wait()
		},
	}, nil
}

func (f *floor) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		go func() {
			if err := f.serve(c); err != nil {
				_ = c.Close()
			}
		}()
	}
}

// serve answers the handshake, reads the subscribe frame and then drains
// what the client sends (pongs, its close frame) until the connection ends.
func (f *floor) serve(c net.Conn) error {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	accept := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(accept[:])+"\r\n\r\n"); err != nil {
		return err
	}
	p, err := readClientFrame(br)
	if err != nil {
		return err
	}
	var sub subscribeFields
	if err := json.Unmarshal(p, &sub); err != nil {
		return err
	}
	fc := &floorConn{conn: c}
	f.mu.Lock()
	for _, k := range sub.keys() {
		f.subs[k] = append(f.subs[k], fc)
	}
	if len(sub.Corporations)+len(sub.Alliances) > 0 {
		f.parties++
	}
	f.mu.Unlock()
	ack := []byte(`{"type":"subscribed"}`)
	if _, err := c.Write(append(appendFrameHeader(nil, len(ack)), ack...)); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, br)
	return err
}

// readClientFrame reads one masked client frame and unmasks its payload.
func readClientFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = int(b[0])<<8 | int(b[1])
	case 127:
		return nil, fmt.Errorf("client frame too large")
	}
	var mask [4]byte
	if _, err := io.ReadFull(br, mask[:]); err != nil {
		return nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return p, nil
}

// appendFrameHeader appends an unmasked final text frame header.
func appendFrameHeader(dst []byte, n int) []byte {
	switch {
	case n < 126:
		return append(dst, 0x81, byte(n))
	case n <= 0xffff:
		return append(dst, 0x81, 126, byte(n>>8), byte(n))
	}
	return append(dst, 0x81, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func (f *floor) publish(km killmail.Killmail) (uint64, error) {
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.keys = killmailKeys(f.keys, km, f.parties > 0)
	var subs []*floorConn
	for _, k := range f.keys {
		subs = append(subs, f.subs[k]...)
	}
	f.mu.Unlock()
	if len(subs) == 0 {
		return id, nil
	}
	ev := eventlog.Event{ID: id, SystemID: km.SystemID, Killmail: referenceBody(f.names, id, km)}
	payload := ev.AppendJSON([]byte(`{"type":"killmail"`))
	payload[len(`{"type":"killmail"`)] = ','
	frame := append(appendFrameHeader(nil, len(payload)), payload...)
	for _, c := range subs {
		c.mu.Lock()
		if c.last == id {
			c.mu.Unlock()
			continue
		}
		c.last = id
		c.pending = append(c.pending, frame...)
		ready := !c.queued
		c.queued = true
		c.mu.Unlock()
		if ready {
			f.dirty <- c
		}
	}
	return id, nil
}

// flush writes each ready connection's bytes with one write.
func (f *floor) flush() {
	var buf []byte
	for c := range f.dirty {
		c.mu.Lock()
		c.queued = false
		buf = append(buf[:0], c.pending...)
		c.pending = c.pending[:0]
		c.mu.Unlock()
		_, _ = c.conn.Write(buf)
	}
}
