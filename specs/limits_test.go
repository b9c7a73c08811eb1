package specs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/transport"
)

// Linux routes all of 127.0.0.0/8 to lo: a client bound to 127.0.0.2 is a
// second source address for the server on 127.0.0.1.
const (
	abuser   = "127.0.0.2"
	innocent = "127.0.0.1"
)

// from is an HTTP client whose connections leave from a given source
// address.
type from struct {
	client *http.Client
}

func clientFrom(ip string) from {
	GinkgoHelper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	DeferCleanup(tr.CloseIdleConnections)
	return from{client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

func (f from) get(ctx context.Context, u string, header ...string) response {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// dial opens a websocket on path; the answer to a refused handshake is
// returned with the error.
func (f from) dial(ctx context.Context, base, path string, header ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path,
		&websocket.DialOptions{HTTPClient: f.client, HTTPHeader: h})
	if err == nil {
		c.SetReadLimit(1 << 20)
		DeferCleanup(func() { _ = c.CloseNow() })
	}
	return c, res, err
}

// wsPaths are the three websocket protocols, each with a frame that
// answers (an acknowledgement) so that the connection is known to be served.
var wsPaths = []struct{ name, path, hello, answer string }{
	{"native", "/api/ws", `{"type":"subscribe","systems":[30000142]}`, `"subscribed"`},
	{"Phoenix", "/socket/websocket?vsn=2.0.0", `["1","1","system:30000142","phx_join",{}]`, `"phx_reply"`},
	{"zKill", "/websocket/", `{"action":"sync"}`, `"error"`},
}

// served says the connection answers its protocol's hello.
func served(ctx context.Context, c *websocket.Conn, hello, answer string) {
	GinkgoHelper()
	Expect(c.Write(ctx, websocket.MessageText, []byte(hello))).To(Succeed())
	_, b, err := c.Read(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(string(b)).To(ContainSubstring(answer))
}

// refusedWith says the connection was closed with 1008 and a reason
// naming the limit.
func refusedWith(ctx context.Context, c *websocket.Conn, limit string) {
	GinkgoHelper()
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	Expect(errors.As(err, &ce)).To(BeTrue(), "read: %v", err)
	Expect(ce.Code).To(Equal(websocket.StatusPolicyViolation))
	Expect(ce.Reason).To(HavePrefix(limit + ":"))
}

// tooMany says r is a 429 naming the limit, with a Retry-After.
func tooMany(r response, name string) {
	GinkgoHelper()
	Expect(r.Status).To(Equal(http.StatusTooManyRequests), "body: %s", r.Body)
	Expect(r.Error()).To(HavePrefix(name + ":"))
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	Expect(err).NotTo(HaveOccurred(), "Retry-After %q", r.Header.Get("Retry-After"))
	Expect(secs).To(BeNumerically(">=", 1))
}

var _ = Describe("abuse limits", func() {
	var bad, good from
	BeforeEach(func() {
		bad, good = clientFrom(abuser), clientFrom(innocent)
	})

	It("refuses requests past an address's rate with 429 rate, and serves another address", func(ctx SpecContext) {
		// One token per 100 s after a burst of 3: the fourth request is over.
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{RatePerIP: 0.01, RateBurst: 3}})
		u := pollURL(kf.URL(), "/api/killfeed", "r", []int64{jita})
		for range 3 {
			Expect(bad.get(ctx, u).Status).To(Equal(http.StatusOK))
		}
		tooMany(bad.get(ctx, u), "rate")
		tooMany(bad.get(ctx, kf.URL()+"/listen.php?queueID=r&ttw=1"), "rate")
		_, res, err := bad.dial(ctx, kf.URL(), "/api/ws")
		Expect(err).To(HaveOccurred())
		Expect(res.StatusCode).To(Equal(http.StatusTooManyRequests))
		Expect(good.get(ctx, u).Status).To(Equal(http.StatusOK))
		Expect(good.get(ctx, kf.URL()+"/healthz").Status).To(Equal(http.StatusOK))
		Expect(bad.get(ctx, kf.URL()+"/healthz").Status).To(Equal(http.StatusOK), "health checks are not limited")
	}, SpecTimeout(60*time.Second))

	It("refuses long-polls past an address's count with 429 longpolls, and serves other requests", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{LongPollsPerIP: 2, RatePerIP: -1}})
		done := make(chan response, 2)
		for i := range 2 {
			go func() {
				defer GinkgoRecover()
				for { // refused while the probe below holds a place: again
					r := bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "lp"+strconv.Itoa(i), []int64{jita}, "wait", "30"))
					if r.Status != http.StatusTooManyRequests {
						done <- r
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
		// Once both wait, a third is refused (until then it may be admitted
		// and answer after its second).
		Eventually(func() int {
			return bad.get(ctx, pollURL(kf.URL(), "/api/killfeed/next", "lp2", []int64{jita}, "wait", "1")).Status
		}).WithTimeout(20 * time.Second).Should(Equal(http.StatusTooManyRequests))
		tooMany(bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "lp2", []int64{jita}, "wait", "1")), "longpolls")
		tooMany(bad.get(ctx, kf.URL()+"/listen.php?queueID=lp&ttw=1"), "longpolls")
		Expect(bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "lp2", []int64{jita})).Status).To(Equal(http.StatusOK), "a poll without wait is not a long-poll")
		Expect(good.get(ctx, pollURL(kf.URL(), "/api/killfeed", "other", []int64{jita}, "wait", "1")).Status).To(Equal(http.StatusOK))
		Expect(good.get(ctx, kf.URL()+"/listen.php?queueID=other&ttw=1").Status).To(Equal(http.StatusOK))

		wsInsert(ctx, kf.URL(), jita, 1) // wakes both
		for range 2 {
			Eventually(done).WithTimeout(20 * time.Second).Should(Receive(HaveField("Status", http.StatusOK)))
		}
		Eventually(func() int {
			return bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "lp2", []int64{jita}, "wait", "1")).Status
		}).WithTimeout(20*time.Second).Should(Equal(http.StatusOK), "the places were given back")
	}, SpecTimeout(90*time.Second))

	It("closes websockets past an address's count with 1008 ws_per_ip on every protocol, and serves another address", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{WSPerIP: 3}})
		var held []*websocket.Conn
		for _, p := range wsPaths {
			c, _, err := bad.dial(ctx, kf.URL(), p.path)
			Expect(err).NotTo(HaveOccurred())
			served(ctx, c, p.hello, p.answer)
			held = append(held, c)
		}
		for _, p := range wsPaths {
			c, _, err := bad.dial(ctx, kf.URL(), p.path)
			Expect(err).NotTo(HaveOccurred(), p.name)
			refusedWith(ctx, c, "ws_per_ip")
		}
		for _, p := range wsPaths {
			c, _, err := good.dial(ctx, kf.URL(), p.path)
			Expect(err).NotTo(HaveOccurred(), p.name)
			served(ctx, c, p.hello, p.answer)
		}
		Expect(held[0].Close(websocket.StatusNormalClosure, "")).To(Succeed())
		Eventually(func(g Gomega) {
			c, _, err := bad.dial(ctx, kf.URL(), wsPaths[2].path)
			g.Expect(err).NotTo(HaveOccurred())
			defer c.CloseNow()
			g.Expect(c.Write(ctx, websocket.MessageText, []byte(wsPaths[2].hello))).To(Succeed())
			_, b, err := c.Read(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(b)).To(ContainSubstring(wsPaths[2].answer))
		}).WithTimeout(10*time.Second).Should(Succeed(), "a closed websocket gives its place back")
	}, SpecTimeout(60*time.Second))

	It("closes websockets past the total with 1008 ws_total", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{WSTotal: 2}})
		for _, f := range []from{good, bad} {
			c, _, err := f.dial(ctx, kf.URL(), "/api/ws")
			Expect(err).NotTo(HaveOccurred())
			served(ctx, c, wsPaths[0].hello, wsPaths[0].answer)
		}
		third := clientFrom("127.0.0.3")
		for _, p := range wsPaths {
			c, _, err := third.dial(ctx, kf.URL(), p.path)
			Expect(err).NotTo(HaveOccurred())
			refusedWith(ctx, c, "ws_total")
		}
		Expect(third.get(ctx, pollURL(kf.URL(), "/api/killfeed", "t", []int64{jita})).Status).To(Equal(http.StatusOK))
	}, SpecTimeout(60*time.Second))

	It("refuses new client ids past the cap with 429 client_id while existing clients keep working", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{MaxClients: 2})
		ids := wsInsert(ctx, kf.URL(), jita, 2)
		var a pollAnswer
		r := good.get(ctx, pollURL(kf.URL(), "/api/killfeed", "first", []int64{jita}, "limit", "1"))
		Expect(r.Status).To(Equal(http.StatusOK))
		r.JSON(&a)
		Expect(a.IDs()).To(Equal(ids[:1]))
		Expect(bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "second", []int64{jita})).Status).To(Equal(http.StatusOK))

		tooMany(bad.get(ctx, pollURL(kf.URL(), "/api/killfeed", "third", []int64{jita})), "client_id")
		tooMany(bad.get(ctx, pollURL(kf.URL(), "/api/killfeed/next", "third", []int64{jita})), "client_id")
		tooMany(bad.get(ctx, kf.URL()+"/listen.php?queueID=third&ttw=1"), "client_id")
		c, _, err := bad.dial(ctx, kf.URL(), "/api/ws")
		Expect(err).NotTo(HaveOccurred())
		served(ctx, c, `{"type":"subscribe","systems":[30000142],"client_id":"third"}`, `client_id:`)

		r = good.get(ctx, pollURL(kf.URL(), "/api/killfeed", "first", []int64{jita}))
		Expect(r.Status).To(Equal(http.StatusOK))
		r.JSON(&a)
		Expect(a.IDs()).To(Equal(ids[1:]), "the existing client reads on")
	}, SpecTimeout(60*time.Second))

	It("believes X-Forwarded-For only from trusted proxies, taking the right-most untrusted address", func(ctx SpecContext) {
		trusted, err := transport.ParsePrefixes(innocent + "/32")
		Expect(err).NotTo(HaveOccurred())
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{RatePerIP: 0.01, RateBurst: 1, TrustedProxies: trusted}})
		u := pollURL(kf.URL(), "/api/killfeed", "x", []int64{jita})
		xff := func(f from, v string) int { return f.get(ctx, u, "X-Forwarded-For", v).Status }

		Expect(xff(good, "203.0.113.7")).To(Equal(http.StatusOK))
		Expect(xff(good, "203.0.113.7")).To(Equal(http.StatusTooManyRequests))
		Expect(xff(good, "198.51.100.9, 203.0.113.7")).To(Equal(http.StatusTooManyRequests), "a forged left entry does not help")
		Expect(xff(good, "203.0.113.7, 127.0.0.1")).To(Equal(http.StatusTooManyRequests), "trusted hops are skipped")
		Expect(xff(good, "198.51.100.9")).To(Equal(http.StatusOK), "another client behind the proxy")
		Expect(xff(good, "2001:db8:1:2::1")).To(Equal(http.StatusOK))
		Expect(xff(good, "2001:db8:1:2::ffff")).To(Equal(http.StatusTooManyRequests), "an IPv6 /64 is one client")

		// 127.0.0.2 is no trusted proxy: its header is ignored.
		Expect(xff(bad, "192.0.2.1")).To(Equal(http.StatusOK))
		Expect(xff(bad, "192.0.2.2")).To(Equal(http.StatusTooManyRequests))
	}, SpecTimeout(60*time.Second))

	It("ignores X-Forwarded-For without trusted proxies", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{Limits: transport.LimitsConfig{RatePerIP: 0.01, RateBurst: 1}})
		u := pollURL(kf.URL(), "/api/killfeed", "x", []int64{jita})
		Expect(good.get(ctx, u, "X-Forwarded-For", "192.0.2.1").Status).To(Equal(http.StatusOK))
		Expect(good.get(ctx, u, "X-Forwarded-For", "192.0.2.2").Status).To(Equal(http.StatusTooManyRequests))
		Expect(bad.get(ctx, u).Status).To(Equal(http.StatusOK))
	}, SpecTimeout(60*time.Second))
})

// writeKeys writes a read keys file.
func writeKeys(path string, lines ...string) {
	GinkgoHelper()
	Expect(os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)).To(Succeed())
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

var _ = Describe("read keys", func() {
	var (
		keysFile string
		f        from
	)
	BeforeEach(func() {
		keysFile = filepath.Join(GinkgoT().TempDir(), "keys")
		writeKeys(keysFile, "# bots", "alpha", "sha256:"+sha256Hex("beta")+" # hashed", "")
		f = clientFrom(innocent)
	})
	bearer := func(key string) []string { return []string{"Authorization", "Bearer " + key} }

	It("are required by poll, next and listen.php: 401 naming key without one or with an unknown one", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{ReadKeysFile: keysFile})
		for _, u := range []string{
			pollURL(kf.URL(), "/api/killfeed", "k", []int64{jita}),
			pollURL(kf.URL(), "/api/killfeed/next", "k", []int64{jita}),
			kf.URL() + "/listen.php?queueID=k&ttw=1",
			kf.URL() + "/api/redisq/listen.php?queueID=k&ttw=1",
		} {
			r := f.get(ctx, u)
			Expect(r.Status).To(Equal(http.StatusUnauthorized), u)
			Expect(r.Error()).To(HavePrefix("key:"))
			Expect(r.Header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
			r = f.get(ctx, u, bearer("gamma")...)
			Expect(r.Status).To(Equal(http.StatusUnauthorized), u)
			Expect(r.Error()).To(HavePrefix("key:"))
			Expect(f.get(ctx, u, bearer("alpha")...).Status).To(BeElementOf(http.StatusOK, http.StatusNoContent), u)
			// Another key, another client: client_ids are bound to their first key.
			Expect(f.get(ctx, strings.Replace(u, "=k&", "=kb&", 1)+"&key=beta").Status).To(BeElementOf(http.StatusOK, http.StatusNoContent), u)
		}
		Expect(f.get(ctx, kf.URL()+"/healthz").Status).To(Equal(http.StatusOK))
	}, SpecTimeout(60*time.Second))

	It("are required by the native, Phoenix and zKill websockets", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{ReadKeysFile: keysFile})
		for _, p := range wsPaths {
			_, res, err := f.dial(ctx, kf.URL(), p.path)
			Expect(err).To(HaveOccurred(), p.name)
			Expect(res.StatusCode).To(Equal(http.StatusUnauthorized), p.name)
			_, res, err = f.dial(ctx, kf.URL(), p.path, bearer("gamma")...)
			Expect(err).To(HaveOccurred(), p.name)
			Expect(res.StatusCode).To(Equal(http.StatusUnauthorized), p.name)

			c, _, err := f.dial(ctx, kf.URL(), p.path, bearer("alpha")...)
			Expect(err).NotTo(HaveOccurred(), p.name)
			served(ctx, c, p.hello, p.answer)
			sep := "?"
			if strings.Contains(p.path, "?") {
				sep = "&"
			}
			c, _, err = f.dial(ctx, kf.URL(), p.path+sep+"key=beta")
			Expect(err).NotTo(HaveOccurred(), p.name)
			served(ctx, c, p.hello, p.answer)
		}
	}, SpecTimeout(60*time.Second))

	It("bind a client_id to its first key: another key gets 403 and does not move its offsets, even after a restart", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		kf := startKillfeed(app.Config{ReadKeysFile: keysFile, Storage: app.StorageDisk, DataDir: dir})
		ids := wsInsert(ctx, kf.URL(), jita, 3)
		owned := func(path, key string, extra ...string) response {
			return f.get(ctx, pollURL(kf.URL(), path, "owned", []int64{jita}, extra...), bearer(key)...)
		}
		var a pollAnswer
		r := owned("/api/killfeed", "alpha", "limit", "1")
		Expect(r.Status).To(Equal(http.StatusOK))
		r.JSON(&a)
		Expect(a.IDs()).To(Equal(ids[:1]))

		for _, path := range []string{"/api/killfeed", "/api/killfeed/next"} {
			r = owned(path, "beta")
			Expect(r.Status).To(Equal(http.StatusForbidden), path)
			Expect(r.Error()).To(HavePrefix("client_id:"))
		}
		c, _, err := f.dial(ctx, kf.URL(), "/api/ws", bearer("beta")...)
		Expect(err).NotTo(HaveOccurred())
		served(ctx, c, `{"type":"subscribe","systems":[30000142],"client_id":"owned"}`, `"error":"client_id: bound to another read key"`)
		c, _, err = f.dial(ctx, kf.URL(), "/socket/websocket?vsn=2.0.0", bearer("beta")...)
		Expect(err).NotTo(HaveOccurred())
		served(ctx, c, `["1","1","system:30000142","phx_join",{"client_id":"owned"}]`, `client_id: bound to another read key`)

		// listen.php queues are bound the same way.
		Expect(f.get(ctx, kf.URL()+"/listen.php?queueID=q&ttw=1", bearer("alpha")...).Status).To(Equal(http.StatusOK))
		Expect(f.get(ctx, kf.URL()+"/listen.php?queueID=q&ttw=1", bearer("beta")...).Status).To(Equal(http.StatusForbidden))

		// The binding is stored with the client.
		Expect(kf.Shutdown(ctx)).To(Succeed())
		kf = startKillfeed(app.Config{ReadKeysFile: keysFile, Storage: app.StorageDisk, DataDir: dir})
		Expect(owned("/api/killfeed", "beta").Status).To(Equal(http.StatusForbidden))
		r = owned("/api/killfeed", "alpha")
		Expect(r.Status).To(Equal(http.StatusOK))
		r.JSON(&a)
		Expect(a.IDs()).To(Equal(ids[1:]), "the refused polls did not move the owner's offsets")
	}, SpecTimeout(90*time.Second))

	It("are re-read on SIGHUP by the binary: a key added is accepted, a key removed refused", func(ctx SpecContext) {
		writeKeys(keysFile, "one")
		p := startProcess(nil, "--storage", "memory", "--read-keys-file", keysFile)
		u := pollURL(p.URL, "/api/killfeed", "hup", []int64{jita})
		Expect(f.get(ctx, u, bearer("one")...).Status).To(Equal(http.StatusOK))
		Expect(f.get(ctx, u, bearer("two")...).Status).To(Equal(http.StatusUnauthorized))

		writeKeys(keysFile, "sha256:"+sha256Hex("two"))
		Expect(p.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		Eventually(p.stderr).WithTimeout(10 * time.Second).Should(gbytes.Say(`read keys reloaded" keys=1`))
		Expect(f.get(ctx, pollURL(p.URL, "/api/killfeed", "hup2", []int64{jita}), bearer("two")...).Status).To(Equal(http.StatusOK))
		Expect(f.get(ctx, u, bearer("one")...).Status).To(Equal(http.StatusUnauthorized))

		// A broken file leaves the keys as they were.
		writeKeys(keysFile, "sha256:nothex")
		Expect(p.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		Eventually(p.stderr).WithTimeout(10 * time.Second).Should(gbytes.Say(`reload failed`))
		Expect(f.get(ctx, pollURL(p.URL, "/api/killfeed", "hup2", []int64{jita}), bearer("two")...).Status).To(Equal(http.StatusOK))
	}, SpecTimeout(90*time.Second))
})

var _ = DescribeTable("the binary refuses bad limit settings with a message naming them and exit status 1",
	func(ctx SpecContext, env []string, args []string, mentions string) {
		for i, a := range args {
			if a == "BADKEYS" {
				args[i] = filepath.Join(GinkgoT().TempDir(), "keys")
				writeKeys(args[i], "sha256:0123")
			}
		}
		cmd := exec.CommandContext(ctx, killfeedBinary(), append([]string{"--listen", "127.0.0.1:0", "--storage", "memory"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "%v: %s", err, out)
		Expect(exit.ExitCode()).To(Equal(1), "%s", out)
		Expect(string(out)).To(ContainSubstring(mentions))
	},
	// (the same value given as a flag is a usage error: exit status 2, see specs/cli_test.go)
	Entry("a trusted proxy that is no prefix", []string{"KILLFEED_TRUSTED_PROXIES=10.0.0.0/8,proxy.example"}, nil, "trusted-proxies"),
	Entry("a malformed variable", []string{"KILLFEED_WS_PER_IP=many"}, nil, "KILLFEED_WS_PER_IP"),
	Entry("a keys file that is missing", nil, []string{"--read-keys-file", "/nonexistent/keys"}, "read-keys-file"),
	Entry("a keys file with a bad digest", nil, []string{"--read-keys-file", "BADKEYS"}, "read-keys-file"),
)
