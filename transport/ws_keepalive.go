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
// write timeout after. The pings due at a tick are spread over half the
// tick, a few at a time: ten thousand connections opened together have a
// thousand or more due at each tick for a while, and sent back to back those
// pings, and the pongs that answer them, would hold up every delivery of the
// moment as a fight would. The goroutine runs while sessions are open.
type keepalive struct {
	timeout, tick time.Duration

	mu       sync.Mutex
	sessions map[*session]struct{}
	running  bool
	batch    []*session // the loop's snapshot, reused
	due      []*session // the sessions to ping at this tick, reused
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
			k.batch, k.due = nil, nil
			k.mu.Unlock()
			return
		}
		batch := k.batch[:0]
		for s := range k.sessions {
			batch = append(batch, s)
		}
		k.batch = batch
		k.mu.Unlock()
		due := k.due[:0]
		for i, s := range batch {
			if s.keepalive(now) {
				due = append(due, s)
			}
			batch[i] = nil
		}
		spread(len(due), k.tick/2, func(i int) { due[i].ping(k.timeout) })
		clear(due)
		k.due = due
	}
}

// pingGroup is how many pings go out together.
const pingGroup = 16

// spread calls f for 0 to n-1 in order, pingGroup at a time, the groups
// evenly over span: the first at once, the last span×(groups-1)/groups
// later.
func spread(n int, span time.Duration, f func(i int)) {
	groups := (n + pingGroup - 1) / pingGroup
	start := time.Now()
	for g := range groups {
		if g > 0 {
			time.Sleep(time.Until(start.Add(span * time.Duration(g) / time.Duration(groups))))
		}
		for i := g * pingGroup; i < min(n, (g+1)*pingGroup); i++ {
			f(i)
		}
	}
}
