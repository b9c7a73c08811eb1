package transport

import (
	"sync"
	"time"
)

// keepalive pings every session of a hub from one goroutine. A timer per
// connection would wake the server twice per connection and interval (to
// ping, then to look for the answer), each time on a goroutine of its own;
// with ten thousand connections that is hundreds of wake-ups a second, each
// a futex and a context switch on an otherwise idle core. Here one ticker
// walks the sessions: each is pinged when its time comes (the interval
// give or take 10 %) and dropped when nothing arrived from it within the
// write timeout after. The pings due at a tick go out back to back. The
// goroutine runs while sessions are open.
type keepalive struct {
	timeout, tick time.Duration

	mu       sync.Mutex
	sessions map[*session]struct{}
	running  bool
	batch    []*session // the loop's snapshot, reused
}

// newKeepalive returns nil when pings are off.
func newKeepalive(cfg WebsocketConfig) *keepalive {
	if cfg.PingInterval <= 0 {
		return nil
	}
	tick := min(cfg.PingInterval, cfg.WriteTimeout) / 4
	return &keepalive{
		timeout:  cfg.WriteTimeout,
		tick:     min(max(tick, time.Millisecond), time.Second),
		sessions: make(map[*session]struct{}),
	}
}

func (k *keepalive) watch(s *session) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sessions[s] = struct{}{}
	if !k.running {
		k.running = true
		go k.run()
	}
}

func (k *keepalive) unwatch(s *session) {
	if k == nil {
		return
	}
	k.mu.Lock()
	delete(k.sessions, s)
	k.mu.Unlock()
}

func (k *keepalive) run() {
	t := time.NewTicker(k.tick)
	defer t.Stop()
	for now := range t.C {
		k.mu.Lock()
		if len(k.sessions) == 0 {
			k.running = false
			k.batch = nil
			k.mu.Unlock()
			return
		}
		batch := k.batch[:0]
		for s := range k.sessions {
			batch = append(batch, s)
		}
		k.batch = batch
		k.mu.Unlock()
		for i, s := range batch {
			s.keepalive(now, k.timeout)
			batch[i] = nil
		}
	}
}
