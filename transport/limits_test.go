package transport

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLimitRejectionsCounted(t *testing.T) {
	svc := startService(t)
	reg := prometheus.NewRegistry()
	srv := New(svc, Config{Registry: reg, Limits: LimitsConfig{RatePerIP: 0.001, RateBurst: 1}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	u := ts.URL + "/api/killfeed?client_id=m&systems=30000142"
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests, http.StatusTooManyRequests} {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, res.StatusCode, want)
		}
	}
	vec, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range vec {
		if mf.GetName() == "killfeed_limit_rejections_total" {
			found = len(mf.GetMetric()) == 6
		}
	}
	if !found {
		t.Fatalf("no killfeed_limit_rejections_total with 6 limits in %v", vec)
	}
	if got := testutil.ToFloat64(srv.limits.rejected[LimitRate]); got != 2 {
		t.Errorf("rate rejections = %v, want 2", got)
	}
	// A second limiter on the same registry shares the counters.
	l2 := newLimiter(LimitsConfig{}, reg)
	if l2.rejected[LimitRate] != srv.limits.rejected[LimitRate] {
		t.Error("second limiter has its own counters")
	}
}

func TestLimiterForgetsIdleAddresses(t *testing.T) {
	l := newLimiter(LimitsConfig{}, nil)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l.state(a)
	l.state(b).ws.Add(1) // an open websocket keeps it
	l.mu.Lock()
	l.sweep(time.Now().Add(l.idle + time.Second))
	l.mu.Unlock()
	if n := l.tracked(); n != 1 {
		t.Fatalf("tracked %d addresses after the sweep, want 1", n)
	}
	if _, ok := l.addrs[b]; !ok {
		t.Error("the address with an open websocket was forgotten")
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimiter(LimitsConfig{TrustedProxies: trusted}, nil)
	plain := newLimiter(LimitsConfig{}, nil)
	for _, c := range []struct {
		remote, xff   string
		want, noProxy string
	}{
		{"10.1.1.1:1", "", "10.1.1.1", "10.1.1.1"},
		{"10.1.1.1:1", "203.0.113.5", "203.0.113.5", "10.1.1.1"},
		{"10.1.1.1:1", "1.1.1.1, 203.0.113.5, 10.2.2.2", "203.0.113.5", "10.1.1.1"},
		{"10.1.1.1:1", "10.3.3.3, 10.2.2.2", "10.3.3.3", "10.1.1.1"},
		{"10.1.1.1:1", "203.0.113.5, junk", "10.1.1.1", "10.1.1.1"},
		{"198.51.100.1:1", "203.0.113.5", "198.51.100.1", "198.51.100.1"},
		{"[::ffff:192.0.2.1]:1", "2001:db8::1", "2001:db8::", "192.0.2.1"},
		{"[2001:db8:0:1:2:3:4:5]:1", "", "2001:db8:0:1::", "2001:db8:0:1::"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := l.clientAddr(r).String(); got != c.want {
			t.Errorf("%s via %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
		if got := plain.clientAddr(r).String(); got != c.noProxy {
			t.Errorf("without proxies, %s via %q: %s, want %s", c.remote, c.xff, got, c.noProxy)
		}
	}
	if _, err := ParsePrefixes("10.0.0.0/8,nonsense"); err == nil {
		t.Error("nonsense accepted")
	}
}

func TestParseReadKeys(t *testing.T) {
	keys, err := parseReadKeys([]byte("# c\n\nplain\nsha256:" +
		"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 # hello\nplain\n"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %d, err %v", len(keys), err)
	}
	k := &ReadKeys{keys: keys}
	if _, ok := k.owner("hello"); !ok {
		t.Error("hashed key refused")
	}
	if _, ok := k.owner("plain"); !ok {
		t.Error("plain key refused")
	}
	if _, ok := k.owner("other"); ok {
		t.Error("unknown key accepted")
	}
	for _, bad := range []string{"sha256:abc\n", "two words\n"} {
		if _, err := parseReadKeys([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// BenchmarkReadGuard is the cost the limits add to a read request (the
// address lookup, the token bucket, the long-poll count) over building the
// request's echo.Context and reading its query, which the handler does
// anyway (bare).
func BenchmarkReadGuard(b *testing.B) {
	s := &Server{limits: newLimiter(LimitsConfig{RatePerIP: 1e9, RateBurst: 1e9}, prometheus.NewRegistry())}
	e := echo.New()
	bare := func(c echo.Context) error { _ = c.QueryParam("wait"); return nil }
	for _, bc := range []struct {
		name string
		h    echo.HandlerFunc
	}{{"bare", bare}, {"guarded", s.readGuard(bare)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/api/killfeed?client_id=x&systems=1&wait=5", nil)
				req.RemoteAddr = "192.0.2.1:4000"
				rec := httptest.NewRecorder()
				for pb.Next() {
					c := e.NewContext(req, rec)
					c.SetPath("/api/killfeed")
					if err := bc.h(c); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
