//go:build !linux

package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// connReader reads each subscribed connection from its own goroutine (the
// epoll loops of reader_linux.go need Linux).
type connReader struct {
	mu     sync.Mutex
	all    []delivery
	closed *atomic.Int64
	count  atomic.Int64
	conns  []*rawWS
	done   atomic.Bool
	wg     sync.WaitGroup
}

func newConnReader(_ int, closed *atomic.Int64) (*connReader, error) {
	return &connReader{closed: closed}, nil
}

func (r *connReader) add(c *rawWS) error {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		g := &goConn{count: &r.count}
		var scratch []byte
		buf := make([]byte, rawReadBuffer)
		data := append([]byte(nil), peekBuffered(c)...)
		for {
			g.at = time.Now().UnixNano()
			closed, err := g.scan.feed(data, &scratch, g)
			if closed || err != nil {
				_ = c.conn.Close()
				break
			}
			for _, p := range g.pongs {
				_ = c.write(0xA, p)
			}
			g.pongs = g.pongs[:0]
			n, err := c.conn.Read(buf)
			if err != nil {
				break
			}
			data = buf[:n]
		}
		if !r.done.Load() {
			r.closed.Add(1)
		}
		r.mu.Lock()
		r.all = append(r.all, g.got...)
		r.mu.Unlock()
	}()
	return nil
}

func (r *connReader) stop() []delivery {
	r.done.Store(true)
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.conn.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return r.all
}

func (r *connReader) delivered() int64 { return r.count.Load() }

type goConn struct {
	count *atomic.Int64
	scan  frameScan
	at    int64
	got   []delivery
	pongs [][]byte
}

func (g *goConn) message(head []byte) {
	g.got = append(g.got, delivery{eventID(head), g.at})
	g.count.Add(1)
}

func (g *goConn) ping(p []byte) { g.pongs = append(g.pongs, append([]byte(nil), p...)) }
