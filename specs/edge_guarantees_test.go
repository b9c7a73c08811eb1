package specs_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// Edges give the core's guarantees: read keys and client_id bindings on
// every node and protocol, no event lost to an answer that was not
// delivered, the core's errors as the core answers them, their own
// /metrics, and a liveness probe that survives the core's outages.
var _ = Describe("edge nodes keep the core's guarantees", func() {
	var (
		dataDir, remote, keysFile string
		core                      *process
		f                         from
	)
	bearer := func(key string) []string { return []string{"Authorization", "Bearer " + key} }
	BeforeEach(func() {
		dataDir = GinkgoT().TempDir()
		remote = freeAddr()
		keysFile = filepath.Join(GinkgoT().TempDir(), "keys")
		writeKeys(keysFile, "alpha", "sha256:"+sha256Hex("beta"))
		f = clientFrom(innocent)
	})

	Context("with the same --read-keys-file on the core and two edges", func() {
		BeforeEach(func() { core = startCoreProcess(dataDir, remote, "--read-keys-file", keysFile) })

		It("require a key on every protocol, and bind a client_id through one edge: another key gets 403 on the other edge and on the core, and its offsets do not move", func(ctx SpecContext) {
			e1 := startEdgeProcess(ctx, remote, "--read-keys-file", keysFile)
			e2 := startEdgeProcess(ctx, remote, "--read-keys-file", keysFile)
			for _, u := range []string{
				pollURL(e1.URL, "/api/killfeed", "k", []int64{jita}),
				pollURL(e1.URL, "/api/killfeed/next", "k", []int64{jita}),
				e1.URL + "/listen.php?queueID=k&ttw=1",
			} {
				r := f.get(ctx, u)
				Expect(r.Status).To(Equal(http.StatusUnauthorized), u)
				Expect(r.Error()).To(HavePrefix("key:"))
				Expect(f.get(ctx, u, bearer("gamma")...).Status).To(Equal(http.StatusUnauthorized), u)
			}
			for _, p := range wsPaths {
				_, res, err := f.dial(ctx, e2.URL, p.path)
				Expect(err).To(HaveOccurred(), p.name)
				Expect(res.StatusCode).To(Equal(http.StatusUnauthorized), p.name)
				c, _, err := f.dial(ctx, e2.URL, p.path, bearer("beta")...)
				Expect(err).NotTo(HaveOccurred(), p.name)
				served(ctx, c, p.hello, p.answer)
			}

			ids := wsInsert(ctx, core.URL, jita, 3)
			owned := func(base, path, key string, extra ...string) response {
				return f.get(ctx, pollURL(base, path, "owned", []int64{jita}, extra...), bearer(key)...)
			}
			var a pollAnswer
			r := owned(e1.URL, "/api/killfeed", "alpha", "limit", "1")
			Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
			r.JSON(&a)
			Expect(a.IDs()).To(Equal(ids[:1]))

			for _, base := range []string{e2.URL, core.URL, e1.URL} {
				for _, path := range []string{"/api/killfeed", "/api/killfeed/next"} {
					r = owned(base, path, "beta")
					Expect(r.Status).To(Equal(http.StatusForbidden), base+path)
					Expect(r.Error()).To(Equal("client_id: bound to another read key"))
				}
				c, _, err := f.dial(ctx, base, "/api/ws", bearer("beta")...)
				Expect(err).NotTo(HaveOccurred())
				served(ctx, c, `{"type":"subscribe","systems":[30000142],"client_id":"owned"}`, `"error":"client_id: bound to another read key"`)
				c, _, err = f.dial(ctx, base, "/socket/websocket?vsn=2.0.0", bearer("beta")...)
				Expect(err).NotTo(HaveOccurred())
				served(ctx, c, `["1","1","system:30000142","phx_join",{"client_id":"owned"}]`, `client_id: bound to another read key`)
			}

			// listen.php queues are bound the same way, whichever node.
			Expect(f.get(ctx, e2.URL+"/listen.php?queueID=q&ttw=1", bearer("alpha")...).Status).To(Equal(http.StatusOK))
			for _, base := range []string{e1.URL, core.URL} {
				r = f.get(ctx, base+"/listen.php?queueID=q&ttw=1", bearer("beta")...)
				Expect(r.Status).To(Equal(http.StatusForbidden), base)
				Expect(r.Error()).To(Equal("client_id: bound to another read key"))
			}

			r = owned(e2.URL, "/api/killfeed", "alpha")
			Expect(r.Status).To(Equal(http.StatusOK))
			r.JSON(&a)
			Expect(a.IDs()).To(Equal(ids[1:]), "the refused reads did not move the owner's offsets")
		}, SpecTimeout(120*time.Second))

		It("re-read the keys file on SIGHUP on an edge: a key added is accepted, a key removed refused", func(ctx SpecContext) {
			e := startEdgeProcess(ctx, remote, "--read-keys-file", keysFile)
			u := pollURL(e.URL, "/api/killfeed", "hup", []int64{jita})
			Expect(f.get(ctx, u, bearer("alpha")...).Status).To(Equal(http.StatusOK))
			Expect(f.get(ctx, u, bearer("delta")...).Status).To(Equal(http.StatusUnauthorized))

			writeKeys(keysFile, "delta")
			Expect(e.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
			Eventually(e.stderr).WithTimeout(10 * time.Second).Should(gbytes.Say(`read keys reloaded" keys=1`))
			Expect(f.get(ctx, pollURL(e.URL, "/api/killfeed", "hup2", []int64{jita}), bearer("delta")...).Status).To(Equal(http.StatusOK))
			Expect(f.get(ctx, u, bearer("alpha")...).Status).To(Equal(http.StatusUnauthorized))
		}, SpecTimeout(90*time.Second))
	})

	Context("with a core", func() {
		BeforeEach(func() { core = startCoreProcess(dataDir, remote) })

		It("consume nothing for a long-poll whose client went away, or a poll that gave up, while the core answered", func(ctx SpecContext) {
			// A long core timeout: the link stays up while the core sleeps.
			e := startEdgeProcess(ctx, remote, "--core-timeout", "60s", "--request-timeout", "2s")
			// A websocket client keeps jita followed on the edge, so that a
			// long-poll's subscription is the edge's own.
			newFollower(ctx, jita, e.URL)
			ids := wsInsert(ctx, core.URL, jita, 3)

			Expect(core.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
			DeferCleanup(func() { _ = core.cmd.Process.Signal(syscall.SIGCONT) })
			// One long-poll goes away while the core holds its read, one
			// poll times out.
			gone, leave := context.WithCancel(ctx)
			left := make(chan error, 1)
			go func() {
				defer GinkgoRecover()
				req, err := http.NewRequestWithContext(gone, http.MethodGet, pollURL(e.URL, "/api/killfeed", "gone", []int64{jita}, "wait", "30"), nil)
				Expect(err).NotTo(HaveOccurred())
				_, err = http.DefaultClient.Do(req)
				left <- err
			}()
			Eventually(func() float64 {
				return scrapeMetrics(ctx, e.URL).value("killfeed_edge_core_requests_in_flight")
			}).WithContext(ctx).Should(Equal(1.0))
			leave()
			Eventually(left).WithContext(ctx).Should(Receive(HaveOccurred()))
			r := get(ctx, pollURL(e.URL, "/api/killfeed", "late", []int64{jita}))
			Expect(r.Status).To(Equal(http.StatusServiceUnavailable), "body: %s", r.Body)
			Expect(scrapeMetrics(ctx, e.URL).value("killfeed_edge_core_requests_in_flight")).To(Equal(2.0))

			Expect(core.cmd.Process.Signal(syscall.SIGCONT)).To(Succeed())
			Eventually(func() float64 {
				return scrapeMetrics(ctx, e.URL).value("killfeed_edge_core_requests_in_flight")
			}).WithContext(ctx).Should(BeZero())
			// Both clients read every event on their next polls, through
			// the edge or the core.
			for client, base := range map[string]string{"gone": e.URL, "late": core.URL} {
				var got []uint64
				Eventually(func(g Gomega) {
					var a pollAnswer
					r := get(ctx, pollURL(base, "/api/killfeed", client, []int64{jita}))
					g.Expect(r.Status).To(Equal(http.StatusOK))
					r.JSON(&a)
					got = append(got, a.IDs()...)
					g.Expect(got).To(HaveLen(len(ids)))
				}).WithContext(ctx).WithTimeout(15*time.Second).Should(Succeed(), client)
				Expect(got).To(Equal(ids), client)
			}
		}, SpecTimeout(120*time.Second))

		It("serve /metrics on an edge: its HTTP serving and its link to the core", func(ctx SpecContext) {
			e := startEdgeProcess(ctx, remote, "--core-grace", "60s")
			fol := newFollower(ctx, jita, e.URL)
			all := wsInsert(ctx, core.URL, jita, 3)
			Expect(fol.collect(ctx, 3)).To(Equal(all))
			Expect(get(ctx, pollURL(e.URL, "/api/killfeed", "m", []int64{jita})).Status).To(Equal(http.StatusOK))
			// A replay of a followed system comes from the edge's tail.
			replay := &follower{nodes: []string{e.URL}, system: jita, last: all[0]}
			Expect(replay.connect(ctx, true)).To(Succeed())
			Expect(replay.collect(ctx, 2)).To(Equal(all[1:]))

			s := scrapeMetrics(ctx, e.URL)
			Expect(s.value("killfeed_http_request_duration_seconds", "route", "/api/killfeed", "status", "200")).To(BeNumerically(">=", 1))
			Expect(s.value("killfeed_ws_connections_opened_total", "protocol", "native")).To(BeNumerically(">=", 2))
			Expect(s.value("killfeed_edge_core_round_trip_seconds", "request", "fetch")).To(BeNumerically(">=", 1))
			Expect(s.value("killfeed_edge_core_round_trip_seconds", "request", "follow")).To(BeNumerically(">=", 1))
			Expect(s.value("killfeed_edge_tail_cache_reads_total", "result", "hit")).To(BeNumerically(">=", 1))
			Expect(s.value("killfeed_edge_core_up")).To(Equal(1.0))
			Expect(s.value("killfeed_edge_follow_lag_events")).To(BeNumerically(">=", 0))
			Expect(s.value("killfeed_edge_core_reconnects_total")).To(BeZero())
			Expect(s).To(HaveKey("go_goroutines"))

			Expect(core.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
			Eventually(core.exited).WithContext(ctx).Should(BeClosed())
			Eventually(func() float64 { return scrapeMetrics(ctx, e.URL).value("killfeed_edge_core_up") }).WithContext(ctx).Should(BeZero())
			core = startCoreProcess(dataDir, remote)
			Eventually(func() float64 {
				return scrapeMetrics(ctx, e.URL).value("killfeed_edge_core_reconnects_total")
			}).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal(1.0))
		}, SpecTimeout(120*time.Second))

		It("stay alive while the core is away: /healthz 200, /readyz 503 saying core unreachable, the outage logged once and its end once", func(ctx SpecContext) {
			e := startEdgeProcess(ctx, remote, "--core-grace", "3s")
			Expect(core.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
			Eventually(core.exited).WithContext(ctx).Should(BeClosed())
			// Past the grace, Proto.Actor has retried the core a few times.
			Eventually(e.stderr).WithContext(ctx).WithTimeout(30 * time.Second).Should(gbytes.Say(`core unreachable past the grace`))
			Expect(get(ctx, e.URL+"/healthz").Status).To(Equal(http.StatusOK))
			r := get(ctx, e.URL+"/readyz")
			Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
			Expect(r.Error()).To(HavePrefix("core unreachable: " + remote + ": "))

			core = startCoreProcess(dataDir, remote)
			Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal(http.StatusOK))
			log := string(e.stderr.Contents())
			Expect(regexp.MustCompile(`core link down`).FindAllString(log, -1)).To(HaveLen(1), log)
			Expect(regexp.MustCompile(`core link up`).FindAllString(log, -1)).To(HaveLen(2), log)
			for _, line := range strings.Split(log, "\n") {
				Expect(line).NotTo(ContainSubstring("level=ERROR"))
				Expect(line).NotTo(ContainSubstring("Endpoint"))
				Expect(line).NotTo(ContainSubstring("DeadLetter"))
			}
		}, SpecTimeout(120*time.Second))
	})

	Context("with a core that holds at most one client", func() {
		BeforeEach(func() { core = startCoreProcess(dataDir, remote, "--max-clients", "1") })

		It("answer the core's refusals as the core does: 429 past --max-clients", func(ctx SpecContext) {
			e := startEdgeProcess(ctx, remote)
			Expect(get(ctx, pollURL(core.URL, "/api/killfeed", "first", []int64{jita})).Status).To(Equal(http.StatusOK))
			want := get(ctx, pollURL(core.URL, "/api/killfeed", "second", []int64{jita}))
			Expect(want.Status).To(Equal(http.StatusTooManyRequests))
			for _, path := range []string{"/api/killfeed", "/api/killfeed/next"} {
				r := get(ctx, pollURL(e.URL, path, "third", []int64{jita}))
				Expect(r.Status).To(Equal(http.StatusTooManyRequests), path)
				Expect(r.Body).To(Equal(want.Body), path)
			}
			r := get(ctx, e.URL+"/listen.php?queueID=fourth&ttw=1")
			Expect(r.Status).To(Equal(http.StatusTooManyRequests))
			Expect(get(ctx, pollURL(e.URL, "/api/killfeed", "first", []int64{jita})).Status).To(Equal(http.StatusOK))
		}, SpecTimeout(90*time.Second))
	})

	Context("with a core of defaults", func() {
		BeforeEach(func() { core = startCoreProcess(dataDir, remote) })

		It("serve HTTP as the core does: the drain grace, --cors-origins and --idle-timeout", func(ctx SpecContext) {
			e := startEdgeProcess(ctx, remote, "--cors-origins", "*.example.com", "--idle-timeout", "300ms", "--drain-grace", "3s")
			u := pollURL(e.URL, "/api/killfeed", "cors", []int64{jita})
			r := do(ctx, http.MethodGet, u, nil, http.Header{"Origin": {"https://map.example.com"}})
			Expect(r.Status).To(Equal(http.StatusOK))
			Expect(r.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://map.example.com"))
			r = do(ctx, http.MethodGet, u, nil, http.Header{"Origin": {"https://evil.test"}})
			Expect(r.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())

			// An idle keep-alive connection is closed by the edge.
			c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c.Close)
			Expect(c.SetReadDeadline(time.Now().Add(20 * time.Second))).To(Succeed())
			_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: kf\r\n\r\n")
			Expect(err).NotTo(HaveOccurred())
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred())
			_, _ = io.Copy(io.Discard, res.Body)
			_, err = br.ReadByte()
			Expect(err).To(Equal(io.EOF))

			// SIGTERM: /readyz 503 while the rest is served, then the edge exits.
			Expect(e.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
			Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).WithTimeout(3 * time.Second).WithPolling(20 * time.Millisecond).
				Should(Equal(http.StatusServiceUnavailable))
			Expect(get(ctx, e.URL+"/readyz").Error()).To(Equal("draining: shutting down"))
			Expect(get(ctx, e.URL+"/healthz").Status).To(Equal(http.StatusOK))
			Eventually(e.exited).WithContext(ctx).WithTimeout(20 * time.Second).Should(BeClosed())
			Expect(e.err).NotTo(HaveOccurred())
			Expect(string(e.stderr.Contents())).To(ContainSubstring(`draining: /readyz answers 503 until the listener closes" grace=3s`))
		}, SpecTimeout(90*time.Second))
	})
})
