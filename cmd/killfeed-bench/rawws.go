package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// rawWS is the load client's websocket: a plain TCP connection with a
// large read buffer, whose server frames are parsed in place and skipped
// after their first bytes. A coder/websocket client allocates and copies
// every message; with ten thousand sockets in one process on the server's
// own two cores, that cost showed up as server latency. It speaks just
// what the load needs (RFC 6455): the handshake, masked client frames,
// unfragmented server messages, ping → pong, the close handshake.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
	hdr  [14]byte
}

const rawReadBuffer = 32 << 10

func dialRaw(ctx context.Context, target string) (*rawWS, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key[:]))
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, rawReadBuffer)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("handshake: %s", res.Status)
	}
	return &rawWS{conn: conn, br: br}, nil
}

// write sends one masked frame (a zero mask: the payload goes as is).
func (c *rawWS) write(op byte, p []byte) error {
	h := c.hdr[:0]
	h = append(h, 0x80|op)
	switch n := len(p); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n <= 0xffff:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	h = append(h, 0, 0, 0, 0)
	_, err := (&net.Buffers{h, p}).WriteTo(c.conn)
	return err
}

func (c *rawWS) writeText(p []byte) error { return c.write(0x1, p) }

var errPeerClosed = errors.New("server closed the websocket")

// next waits for the next data message and copies up to len(head) of its
// first bytes into head; at is when its header was read. Pings are
// answered on the way; a close frame ends with errPeerClosed.
func (c *rawWS) next(head []byte) (n int, at int64, err error) {
	for {
		b0, err := c.br.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		b1, err := c.br.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		at = time.Now().UnixNano()
		size := int64(b1 & 0x7f)
		switch size {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return 0, 0, err
			}
			size = int64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return 0, 0, err
			}
			size = int64(binary.BigEndian.Uint64(b[:]))
		}
		if b1&0x80 != 0 {
			return 0, 0, errors.New("server frame is masked")
		}
		switch op := b0 & 0x0f; op {
		case 0x1, 0x2: // a message
			n, err = io.ReadFull(c.br, head[:min(int64(len(head)), size)])
			if err != nil {
				return 0, 0, err
			}
			_, err = c.br.Discard(int(size) - n)
			return n, at, err
		case 0x9: // ping
			p := make([]byte, size)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, 0, err
			}
			if err := c.write(0xA, p); err != nil {
				return 0, 0, err
			}
		case 0x8: // close: answer it, then hang up
			p := make([]byte, size)
			_, _ = io.ReadFull(c.br, p)
			_ = c.write(0x8, p[:min(len(p), 2)])
			_ = c.conn.Close()
			return 0, 0, errPeerClosed
		default: // pong, continuation
			if _, err := c.br.Discard(int(size)); err != nil {
				return 0, 0, err
			}
		}
	}
}

func (c *rawWS) Close() error { return c.conn.Close() }

// peekBuffered is what the reader took from the socket beyond the frames
// read so far.
func peekBuffered(c *rawWS) []byte {
	b, _ := c.br.Peek(c.br.Buffered())
	return b
}
