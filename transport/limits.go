package transport

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/killfeed/killfeed/eventlog"
)

// Defaults of a zero LimitsConfig. Each limit is per client address (an
// IPv4 address, or the /64 of an IPv6 address) except WSTotal.
const (
	DefaultRatePerIP      = 100
	DefaultRateBurst      = 200
	DefaultLongPollsPerIP = 16
	DefaultWSPerIP        = 256
	DefaultWSTotal        = 20000
	// maxTrackedAddrs bounds the per-address table: past it, and after a
	// sweep, requests from addresses not in it are refused as "rate".
	maxTrackedAddrs = 1 << 18
	// addrIdle is how long an address with nothing open stays tracked after
	// its last request (at least until its token bucket is full again).
	addrIdle      = time.Minute
	sweepInterval = 30 * time.Second
	// clientsRetryAfter is the Retry-After of a refused new client_id.
	clientsRetryAfter = 60 * time.Second
)

// Limit names, as error messages, close reasons and the metric's label
// values name them.
const (
	LimitRate      = "rate"
	LimitLongPolls = "longpolls"
	LimitWSPerIP   = "ws_per_ip"
	LimitWSTotal   = "ws_total"
	LimitClients   = "clients"
	LimitKey       = "key"
)

// LimitsConfig bounds what one client address, and everyone together, may
// hold of the read endpoints (polls, listen.php and the websockets). For
// each count, 0 means its default and a negative value turns it off.
type LimitsConfig struct {
	// RatePerIP is the sustained requests per second of one address (a
	// token bucket of RateBurst); 0 means DefaultRatePerIP.
	RatePerIP float64
	// RateBurst is the bucket size; 0 means DefaultRateBurst.
	RateBurst int
	// LongPollsPerIP bounds the concurrent long-polls (wait > 0, and every
	// listen.php call) of one address; 0 means DefaultLongPollsPerIP.
	LongPollsPerIP int
	// WSPerIP bounds the open websockets of one address; 0 means
	// DefaultWSPerIP.
	WSPerIP int
	// WSTotal bounds all open websockets; 0 means DefaultWSTotal.
	WSTotal int
	// TrustedProxies lists the proxies whose X-Forwarded-For is believed:
	// the client address is the right-most one in the header that is not
	// in these prefixes. Empty means the header is ignored and the client
	// is the peer address.
	TrustedProxies []netip.Prefix
}

// NoLimits is a LimitsConfig with every limit turned off, for load tools
// that open thousands of connections from one address.
func NoLimits() LimitsConfig {
	return LimitsConfig{RatePerIP: -1, RateBurst: -1, LongPollsPerIP: -1, WSPerIP: -1, WSTotal: -1}
}

func (c LimitsConfig) withDefaults() LimitsConfig {
	if c.RatePerIP == 0 {
		c.RatePerIP = DefaultRatePerIP
	}
	if c.RateBurst == 0 {
		c.RateBurst = DefaultRateBurst
	}
	if c.LongPollsPerIP == 0 {
		c.LongPollsPerIP = DefaultLongPollsPerIP
	}
	if c.WSPerIP == 0 {
		c.WSPerIP = DefaultWSPerIP
	}
	if c.WSTotal == 0 {
		c.WSTotal = DefaultWSTotal
	}
	return c
}

// ParsePrefixes reads a comma-separated list of CIDR prefixes or bare
// addresses (a /32 or /128).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, errors.New(strconv.Quote(part) + " is not a CIDR prefix or an address")
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// addrState is what one client address holds.
type addrState struct {
	lim       *rate.Limiter // nil when the rate limit is off
	longPolls atomic.Int32
	ws        atomic.Int32
	lastSeen  atomic.Int64 // Unix nanoseconds
}

// limiter enforces LimitsConfig.
type limiter struct {
	cfg       LimitsConfig
	wsTotal   atomic.Int32
	mu        sync.Mutex
	addrs     map[netip.Addr]*addrState
	lastSweep time.Time
	idle      time.Duration
	rejected  map[string]prometheus.Counter
	// perAddr says whether some limit counts per address (rate, long-polls,
	// websockets per address); without one, requests are not tracked.
	perAddr bool
}

func newLimiter(cfg LimitsConfig, reg *prometheus.Registry) *limiter {
	cfg = cfg.withDefaults()
	l := &limiter{cfg: cfg, addrs: make(map[netip.Addr]*addrState), lastSweep: time.Now(), idle: addrIdle}
	l.perAddr = cfg.RatePerIP > 0 || cfg.LongPollsPerIP >= 0 || cfg.WSPerIP >= 0
	if cfg.RatePerIP > 0 && cfg.RateBurst > 0 {
		// An address is dropped only once its bucket is full again.
		l.idle = max(l.idle, time.Duration(float64(cfg.RateBurst)/cfg.RatePerIP*float64(time.Second)))
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "killfeed_limit_rejections_total",
		Help: "Requests and websockets refused by an abuse limit, by limit.",
	}, []string{"limit"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if v, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					vec = v
				}
			}
		}
	}
	l.rejected = make(map[string]prometheus.Counter)
	for _, name := range []string{LimitRate, LimitLongPolls, LimitWSPerIP, LimitWSTotal, LimitClients, LimitKey} {
		l.rejected[name] = vec.WithLabelValues(name)
	}
	return l
}

// clientAddr is the address a request is accounted to: the peer, or with
// trusted proxies the right-most untrusted X-Forwarded-For entry. IPv6
// addresses are cut to their /64, which one host usually has whole.
func (l *limiter) clientAddr(r *http.Request) netip.Addr {
	a := l.resolvedAddr(r)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// resolvedAddr is the address of the client of r: the peer, or with
// trusted proxies the right-most untrusted X-Forwarded-For entry.
func (l *limiter) resolvedAddr(r *http.Request) netip.Addr {
	a := peerAddr(r.RemoteAddr)
	if len(l.cfg.TrustedProxies) > 0 && l.trusted(a) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // garbage: account to the last proxy that was believed
			}
			a = h.Unmap()
			if !l.trusted(a) {
				break
			}
		}
	}
	return a
}

func (l *limiter) trusted(a netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

// state returns the state of a, creating it; nil when the table is full.
func (l *limiter) state(a netip.Addr) *addrState {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepInterval {
		l.sweep(now)
	}
	st := l.addrs[a]
	if st == nil {
		if len(l.addrs) >= maxTrackedAddrs {
			if now.Sub(l.lastSweep) >= time.Second {
				l.sweep(now)
			}
			if len(l.addrs) >= maxTrackedAddrs {
				return nil
			}
		}
		st = &addrState{}
		if l.cfg.RatePerIP > 0 {
			st.lim = rate.NewLimiter(rate.Limit(l.cfg.RatePerIP), max(l.cfg.RateBurst, 1))
		}
		l.addrs[a] = st
	}
	st.lastSeen.Store(now.UnixNano())
	return st
}

// sweep forgets the addresses idle for l.idle with nothing open. Called
// with mu held.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	before := now.Add(-l.idle).UnixNano()
	for a, st := range l.addrs {
		if st.lastSeen.Load() < before && st.longPolls.Load() == 0 && st.ws.Load() == 0 {
			delete(l.addrs, a)
		}
	}
}

// tracked is how many addresses the table holds.
func (l *limiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// limitError is a refusal by a limit: 429 with Retry-After, or 401 for
// the read key.
type limitError struct {
	code       int
	limit      string
	msg        string
	retryAfter time.Duration
}

func (e *limitError) Error() string { return e.limit + ": " + e.msg }

func (l *limiter) refuse(limit, msg string, retryAfter time.Duration) error {
	l.rejected[limit].Inc()
	return &limitError{code: http.StatusTooManyRequests, limit: limit, msg: msg, retryAfter: retryAfter}
}

// ctxAddr is the echo.Context key of the request's *addrState.
const ctxAddr = "killfeed.addr"

// admitRequest applies the rate limit to a read request and remembers the
// address's state for the later checks.
func (l *limiter) admitRequest(c echo.Context) error {
	if !l.perAddr {
		return nil // no limit counts per address: nothing to track
	}
	st := l.state(l.clientAddr(c.Request()))
	if st == nil {
		return l.refuse(LimitRate, "too many client addresses are active; try again later", sweepInterval)
	}
	c.Set(ctxAddr, st)
	if st.lim == nil {
		return nil
	}
	r := st.lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		if d == rate.InfDuration {
			d = time.Minute
		}
		return l.refuse(LimitRate, "more than "+strconv.FormatFloat(l.cfg.RatePerIP, 'f', -1, 64)+
			" requests per second from this address", d)
	}
	return nil
}

// admitLongPoll counts a long-poll of c's address; release undoes it.
func (l *limiter) admitLongPoll(c echo.Context) (release func(), err error) {
	st, _ := c.Get(ctxAddr).(*addrState)
	if st == nil || l.cfg.LongPollsPerIP < 0 {
		return func() {}, nil
	}
	if int(st.longPolls.Add(1)) > l.cfg.LongPollsPerIP {
		st.longPolls.Add(-1)
		return nil, l.refuse(LimitLongPolls, "more than "+strconv.Itoa(l.cfg.LongPollsPerIP)+
			" concurrent long-polls (wait > 0 or listen.php) from this address", time.Second)
	}
	return func() { st.longPolls.Add(-1) }, nil
}

// admitWebsocket counts a websocket of c's address and in total; on
// refusal it names the limit and the close reason.
func (l *limiter) admitWebsocket(c echo.Context) (release func(), limit, reason string) {
	st, _ := c.Get(ctxAddr).(*addrState)
	if l.cfg.WSTotal >= 0 {
		if int(l.wsTotal.Add(1)) > l.cfg.WSTotal {
			l.wsTotal.Add(-1)
			l.rejected[LimitWSTotal].Inc()
			return nil, LimitWSTotal, "ws_total: the server holds its most websockets (" + strconv.Itoa(l.cfg.WSTotal) + ")"
		}
	}
	if st != nil && l.cfg.WSPerIP >= 0 {
		if int(st.ws.Add(1)) > l.cfg.WSPerIP {
			st.ws.Add(-1)
			if l.cfg.WSTotal >= 0 {
				l.wsTotal.Add(-1)
			}
			l.rejected[LimitWSPerIP].Inc()
			return nil, LimitWSPerIP, "ws_per_ip: more than " + strconv.Itoa(l.cfg.WSPerIP) + " websockets from this address"
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if l.cfg.WSTotal >= 0 {
				l.wsTotal.Add(-1)
			}
			if st != nil && l.cfg.WSPerIP >= 0 {
				st.ws.Add(-1)
			}
		})
	}, "", ""
}

// isLongPoll says whether a poll request waits: wait > 0 on the poll
// routes, always on listen.php (ttw is at least 1s). It reads wait from the
// raw query, which it does not parse whole.
func isLongPoll(c echo.Context) bool {
	p := c.Path()
	if strings.HasSuffix(p, "listen.php") {
		return true
	}
	v := rawQueryParam(c.Request().URL.RawQuery, "wait")
	if v == "" {
		return false
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

// readGuard is the middleware of the read routes: rate limit, read key,
// then the long-poll count.
func (s *Server) readGuard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.limits.admitRequest(c); err != nil {
			return err
		}
		if err := s.authorizeRead(c); err != nil {
			return err
		}
		if !isLongPoll(c) {
			return next(c)
		}
		release, err := s.limits.admitLongPoll(c)
		if err != nil {
			return err
		}
		defer release()
		return next(c)
	}
}

// limitErrors wraps an error handler: refusals by a limit get their
// Retry-After, and refused new clients are counted.
func (l *limiter) limitErrors(h echo.HTTPErrorHandler) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		var le *limitError
		switch {
		case errors.As(err, &le):
			if le.code == http.StatusUnauthorized {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="killfeed"`)
			}
			if le.retryAfter > 0 {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(le.retryAfter.Seconds()))))
			}
		case errors.Is(err, eventlog.ErrTooManyClients):
			l.rejected[LimitClients].Inc()
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(clientsRetryAfter/time.Second)))
		}
		h(err, c)
	}
}

// refuseWebsocket accepts the upgrade only to close it at once with 1008
// (policy violation) and reason, which browsers see where they would not
// see an HTTP status.
func (s *Server) refuseWebsocket(c echo.Context, reason string) error {
	hw := &hijackWriter{ResponseWriter: c.Response()}
	conn, err := websocket.Accept(hw, c.Request(), s.ws.cfg.acceptOptions())
	if err != nil {
		return nil // Accept wrote the response
	}
	// Close waits for the peer's close frame; a refused peer gets a second
	// to send it, so that refusals hold no connection for long.
	t := time.AfterFunc(time.Second, func() { _ = conn.CloseNow() })
	_ = conn.Close(websocket.StatusPolicyViolation, reason)
	t.Stop()
	return nil
}
