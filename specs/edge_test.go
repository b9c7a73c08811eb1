package specs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// freeAddr returns a loopback host:port that nothing listens on now.
func freeAddr() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	return addr
}

// startCoreProcess runs a core on disk storage in dataDir whose remote
// endpoint (for edges) is at remote.
func startCoreProcess(dataDir, remote string, extra ...string) *process {
	GinkgoHelper()
	return startProcess(nil, append([]string{"--storage", "disk", "--data-dir", dataDir, "--r2z2=false",
		"--remote-listen", remote}, extra...)...)
}

// startEdgeProcess runs `killfeed edge` against core and waits until it is
// ready.
func startEdgeProcess(ctx context.Context, core string, extra ...string) *process {
	GinkgoHelper()
	p := startSubcommand(nil, []string{"edge"}, append([]string{"--core", core, "--core-ping", "200ms", "--core-timeout", "1s"}, extra...)...)
	Eventually(func() int { return readyz(ctx, p.URL) }).WithTimeout(20 * time.Second).Should(Equal(http.StatusOK))
	return p
}

func readyz(ctx context.Context, base string) int {
	return get(ctx, base+"/readyz").Status
}

// follower is a native websocket client that follows one system and, when
// its connection ends, moves to the next node and resumes with since.
type follower struct {
	nodes  []string
	node   int
	system int64
	c      *websocket.Conn
	last   uint64
	got    []uint64
	// closes are the close codes of the connections that ended.
	closes []websocket.StatusCode
	// acks are the subscribed acknowledgements, one per connection.
	acks []wsFrame
}

func newFollower(ctx context.Context, system int64, nodes ...string) *follower {
	GinkgoHelper()
	f := &follower{nodes: nodes, system: system}
	Expect(f.connect(ctx, false)).To(Succeed())
	return f
}

// connect subscribes on the current node, from the head or since the last
// event received.
func (f *follower) connect(ctx context.Context, resume bool) error {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.nodes[f.node], "http")+"/api/ws", nil)
	if err != nil {
		return err
	}
	c.SetReadLimit(1 << 20)
	DeferCleanup(func() { _ = c.CloseNow() })
	sub := `{"type":"subscribe","systems":[` + itoa(f.system) + `]`
	if resume {
		sub += `,"since":` + itoa(int64(f.last))
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(sub+"}")); err != nil {
		return err
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return err
	}
	var ack wsFrame
	if err := json.Unmarshal(b, &ack); err != nil || ack.Type != "subscribed" {
		return errors.New("no subscribed ack: " + string(b))
	}
	f.c = c
	f.acks = append(f.acks, ack)
	return nil
}

// collect reads killmail frames until n were received in all, moving to
// the next node whenever a connection ends.
func (f *follower) collect(ctx context.Context, n int) []uint64 {
	GinkgoHelper()
	for len(f.got) < n {
		_, b, err := f.c.Read(ctx)
		if err != nil {
			Expect(ctx.Err()).NotTo(HaveOccurred())
			f.closes = append(f.closes, websocket.CloseStatus(err))
			Eventually(func() error {
				f.node = (f.node + 1) % len(f.nodes)
				return f.connect(ctx, true)
			}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Succeed())
			continue
		}
		var fr wsFrame
		Expect(json.Unmarshal(b, &fr)).To(Succeed(), "frame: %s", b)
		Expect(fr.Type).To(Equal("killmail"), "frame: %s", b)
		f.got = append(f.got, fr.EventID)
		f.last = fr.EventID
	}
	return f.got
}

// readRaw reads n text frames verbatim.
func readRaw(ctx context.Context, c *websocket.Conn, n int) []string {
	GinkgoHelper()
	out := make([]string, n)
	for i := range out {
		typ, b, err := c.Read(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(typ).To(Equal(websocket.MessageText))
		out[i] = string(b)
	}
	return out
}

var _ = DescribeTable("killfeed edge refuses bad settings with a message naming them and exit status 1",
	func(ctx SpecContext, args []string, mentions string) {
		cmd := exec.CommandContext(ctx, killfeedBinary(), append([]string{"edge", "--listen", "127.0.0.1:0"}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "%s", out)
		Expect(exit.ExitCode()).To(Equal(1), "%s", out)
		Expect(string(out)).To(ContainSubstring(mentions))
	},
	Entry("no core", nil, "core:"),
	Entry("a core without a port", []string{"--core", "10.0.0.1"}, "core:"),
	Entry("a negative grace", []string{"--core", "127.0.0.1:7000", "--core-grace", "-1s"}, "core-grace:"),
	Entry("a bad remote address", []string{"--core", "127.0.0.1:7000", "--remote-listen", "nowhere"}, "remote-listen:"),
)

var _ = Describe("edge nodes (killfeed edge --core)", func() {
	var (
		dataDir, remote string
		core            *process
	)
	BeforeEach(func() {
		dataDir = GinkgoT().TempDir()
		remote = freeAddr()
		core = startCoreProcess(dataDir, remote)
	})

	It("serves frames byte-identical to the core's, on every protocol, and the HTTP API", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote)
		wsInsert(ctx, core.URL, jita, 2)

		// Native protocol: acknowledgement and events.
		direct, viaEdge := dialWS(ctx, core.URL, "/api/ws"), dialWS(ctx, e.URL, "/api/ws")
		// zKillboard-style protocol.
		zDirect, zEdge := dialWS(ctx, core.URL, "/websocket/"), dialWS(ctx, e.URL, "/websocket/")
		// Phoenix Channels v2.
		pDirect, pEdge := dialWS(ctx, core.URL, "/socket/websocket?vsn=2.0.0"), dialWS(ctx, e.URL, "/socket/websocket?vsn=2.0.0")
		for _, c := range []*websocket.Conn{pDirect, pEdge} {
			Expect(c.Write(ctx, websocket.MessageText, []byte(`["1","1","system:30000142","phx_join",{}]`))).To(Succeed())
		}
		Expect(readRaw(ctx, pEdge, 1)).To(Equal(readRaw(ctx, pDirect, 1)))
		for _, c := range []*websocket.Conn{direct, viaEdge} {
			Expect(c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","systems":[30000142]}`))).To(Succeed())
		}
		for _, c := range []*websocket.Conn{zDirect, zEdge} {
			Expect(c.Write(ctx, websocket.MessageText, []byte(`{"action":"sub","channel":"system:30000142"}`))).To(Succeed())
			// An unknown action's error answers after the sub took effect.
			Expect(c.Write(ctx, websocket.MessageText, []byte(`{"action":"sync"}`))).To(Succeed())
		}
		Expect(readRaw(ctx, viaEdge, 1)).To(Equal(readRaw(ctx, direct, 1)))
		Expect(readRaw(ctx, zEdge, 1)).To(Equal(readRaw(ctx, zDirect, 1)))

		wsInsert(ctx, core.URL, amarr, 2)
		ids := wsInsert(ctx, e.URL, jita, 3) // inserted through the edge
		ids = append(ids, wsInsert(ctx, core.URL, jita, 2)...)
		want := readRaw(ctx, direct, len(ids))
		Expect(readRaw(ctx, viaEdge, len(ids))).To(Equal(want))
		Expect(readRaw(ctx, zEdge, len(ids))).To(Equal(readRaw(ctx, zDirect, len(ids))))
		Expect(readRaw(ctx, pEdge, len(ids))).To(Equal(readRaw(ctx, pDirect, len(ids))))
		for i, id := range ids {
			Expect(want[i]).To(ContainSubstring(`"event_id":` + itoa(int64(id)) + `,`))
		}

		// Polling with server-side offsets lives on the core: a client
		// may poll either node.
		p1 := get(ctx, pollURL(e.URL, "/api/killfeed", "bot", []int64{jita}, "limit", "4"))
		Expect(p1.Status).To(Equal(http.StatusOK), "body: %s", p1.Body)
		p2 := get(ctx, pollURL(core.URL, "/api/killfeed", "bot", []int64{jita}))
		var a1, a2 pollAnswer
		p1.JSON(&a1)
		p2.JSON(&a2)
		Expect(append(a1.IDs(), a2.IDs()...)).To(HaveLen(7))
		Expect(append(a1.IDs(), a2.IDs()...)).To(ContainElements(ids))

		// RedisQ: a queue started on the edge gets the next killmail.
		answered := make(chan response, 1)
		go func() {
			defer GinkgoRecover()
			answered <- get(ctx, e.URL+"/listen.php?queueID=edgeq&ttw=10")
		}()
		Eventually(func() int {
			wsInsert(ctx, core.URL, amarr, 1)
			select {
			case r := <-answered:
				answered <- r
				return r.Status
			case <-time.After(200 * time.Millisecond):
				return 0
			}
		}).WithContext(ctx).Should(Equal(http.StatusOK))
		r := <-answered
		Expect(string(r.Body)).To(ContainSubstring(`"package":{`))

		// SIGTERM: the edge closes its websockets with 1001 and exits 0.
		Expect(e.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		_, _, err := viaEdge.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusGoingAway))
		Eventually(e.exited).WithTimeout(15 * time.Second).Should(BeClosed())
		Expect(e.err).NotTo(HaveOccurred())
	}, SpecTimeout(90*time.Second))

	It("resumes a client_id on another node exactly where it left off", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote)
		subscribe := func(base string) *wsClient {
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","systems":[30000142],"client_id":"mover"}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			return ws
		}
		ws := subscribe(e.URL)
		first := wsInsert(ctx, core.URL, jita, 3)
		Expect(ws.killmails(ctx, 3)).To(Equal(first))
		ws.pingPong(ctx) // the offsets were advanced as the events were written
		Expect(ws.c.Close(websocket.StatusNormalClosure, "")).To(Succeed())

		missed := wsInsert(ctx, core.URL, jita, 2)
		ws = subscribe(core.URL) // from the edge to the core
		Expect(ws.killmails(ctx, 2)).To(Equal(missed))
		ws.pingPong(ctx)
		Expect(ws.c.Close(websocket.StatusNormalClosure, "")).To(Succeed())

		more := wsInsert(ctx, core.URL, jita, 2)
		ws = subscribe(e.URL) // and back
		Expect(ws.killmails(ctx, 2)).To(Equal(more))
		ws.pingPong(ctx)
	}, SpecTimeout(60*time.Second))

	It("exits 0 on SIGTERM while its core is gone", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote)
		f := newFollower(ctx, jita, e.URL)
		Expect(f.collect(ctx, 0)).To(BeEmpty())
		// Both at once, as a deployment's stop does: the edge's goodbye
		// finds no core, and its remote is still trying to connect.
		Expect(core.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Expect(e.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(e.exited).WithTimeout(15 * time.Second).Should(BeClosed())
		Expect(e.err).NotTo(HaveOccurred())
	}, SpecTimeout(60*time.Second))

	It("loses nothing when an edge is killed: its websocket clients move to the other edge with since", func(ctx SpecContext) {
		e1 := startEdgeProcess(ctx, remote)
		e2 := startEdgeProcess(ctx, remote)
		f := newFollower(ctx, jita, e1.URL, e2.URL)
		all := wsInsert(ctx, core.URL, jita, 5)
		Expect(f.collect(ctx, 5)).To(Equal(all))

		Expect(e1.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(e1.exited).WithContext(ctx).Should(BeClosed())
		all = append(all, wsInsert(ctx, core.URL, jita, 5)...) // while the client is away
		Expect(f.collect(ctx, 10)).To(Equal(all))
		all = append(all, wsInsert(ctx, core.URL, jita, 5)...)
		Expect(f.collect(ctx, 15)).To(Equal(all))
		Expect(f.closes).To(HaveLen(1))
		Expect(f.node).To(Equal(1))
		// The core let go of the dead edge's forwarder.
		Eventually(core.stderr).WithTimeout(20 * time.Second).Should(gbytes.Say(`edge gone`))
	}, SpecTimeout(90*time.Second))

	It("resumes its clients without a gap when the core restarts", func(ctx SpecContext) {
		e1 := startEdgeProcess(ctx, remote, "--core-grace", "60s")
		e2 := startEdgeProcess(ctx, remote, "--core-grace", "60s")
		f1 := newFollower(ctx, jita, e1.URL)
		f2 := newFollower(ctx, jita, e2.URL)
		all := wsInsert(ctx, core.URL, jita, 3)
		Expect(f1.collect(ctx, 3)).To(Equal(all))
		Expect(f2.collect(ctx, 3)).To(Equal(all))

		Expect(core.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(core.exited).WithContext(ctx).Should(BeClosed())
		Eventually(func() int { return readyz(ctx, e1.URL) }).WithContext(ctx).Should(Equal(http.StatusServiceUnavailable))
		// While the core is away the edge answers at once, with 503.
		r := get(ctx, pollURL(e1.URL, "/api/killfeed", "bot", []int64{jita}, "wait", "30"))
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable), "body: %s", r.Body)

		core = startCoreProcess(dataDir, remote)
		// Inserted at once, most likely before the edges are back: they
		// catch up from their last event_id.
		all = append(all, wsInsert(ctx, core.URL, jita, 4)...)
		for _, e := range []*process{e1, e2} {
			Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).Should(Equal(http.StatusOK))
		}
		all = append(all, wsInsert(ctx, core.URL, jita, 3)...)
		Expect(f1.collect(ctx, 10)).To(Equal(all))
		Expect(f2.collect(ctx, 10)).To(Equal(all))
		Expect(f1.closes).To(BeEmpty(), "the same connection carried on")
		Expect(f2.closes).To(BeEmpty(), "the same connection carried on")
		// The whole log: the first link up may come before "killfeed
		// listening", which starting the edge read past.
		Expect(string(e1.stderr.Contents())).To(MatchRegexp(`(?s)core link up.*core link down.*core link up`))
	}, SpecTimeout(120*time.Second))

	It("ends its clients' subscriptions when the core dropped events it had not received; they resume with missed", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote, "--core-grace", "60s")
		f := newFollower(ctx, jita, e.URL)
		all := wsInsert(ctx, core.URL, jita, 3)
		Expect(f.collect(ctx, 3)).To(Equal(all))

		// The edge sleeps through a core restart with tight retention,
		// during which events it never saw are inserted and dropped.
		Expect(e.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
		DeferCleanup(func() { _ = e.cmd.Process.Signal(syscall.SIGCONT) })
		Expect(core.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(core.exited).WithContext(ctx).Should(BeClosed())
		core = startCoreProcess(dataDir, remote, "--max-events", "3", "--gc-interval", "100ms")
		later := wsInsert(ctx, core.URL, jita, 10)
		Eventually(func(g Gomega) {
			var h struct {
				Oldest uint64 `json:"oldest_event_id"`
			}
			get(ctx, core.URL+"/healthz").JSON(&h)
			g.Expect(h.Oldest).To(BeNumerically(">", all[2]+1))
		}).WithContext(ctx).Should(Succeed())
		Expect(e.cmd.Process.Signal(syscall.SIGCONT)).To(Succeed())

		_, _, err := f.c.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusServiceRestart))
		Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).Should(Equal(http.StatusOK))
		Expect(f.connect(ctx, true)).To(Succeed())
		Expect(f.acks[1].Missed).To(BeTrue(), "ack: %+v", f.acks[1])
		Expect(f.collect(ctx, 6)[3:]).To(Equal(later[7:]))
	}, SpecTimeout(90*time.Second))

	It("answers since replays of followed systems from its tail while the core is briefly away", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote, "--core-grace", "60s")
		a := newFollower(ctx, jita, e.URL)
		all := wsInsert(ctx, core.URL, jita, 4)
		Expect(a.collect(ctx, 4)).To(Equal(all))

		Expect(core.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
		DeferCleanup(func() { _ = core.cmd.Process.Signal(syscall.SIGCONT) })
		Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).Should(Equal(http.StatusServiceUnavailable))
		// A client joining jita with since is served from the edge alone.
		b := &follower{nodes: []string{e.URL}, system: jita, last: all[1]}
		Expect(b.connect(ctx, true)).To(Succeed())
		Expect(b.acks[0].Head).To(Equal(all[3]))
		Expect(b.collect(ctx, 2)).To(Equal(all[2:]))

		Expect(core.cmd.Process.Signal(syscall.SIGCONT)).To(Succeed())
		later := wsInsert(ctx, core.URL, jita, 2)
		Expect(a.collect(ctx, 6)).To(Equal(append(all, later...)))
		Expect(b.collect(ctx, 4)).To(Equal(append(all[2:], later...)))
		Expect(a.closes).To(BeEmpty())
		Expect(b.closes).To(BeEmpty())
	}, SpecTimeout(90*time.Second))

	It("goes unready, answers long-polls with 503 and closes websockets with 1012 while cut off from the core", func(ctx SpecContext) {
		e := startEdgeProcess(ctx, remote, "--core-grace", "1s")
		before := wsInsert(ctx, core.URL, jita, 2)
		f := newFollower(ctx, jita, e.URL)
		f.last = before[1]
		waiting := make(chan response, 1)
		go func() {
			defer GinkgoRecover()
			waiting <- get(ctx, pollURL(e.URL, "/api/killfeed", "lp", []int64{amarr}, "wait", "30"))
		}()
		Consistently(waiting).WithTimeout(500 * time.Millisecond).ShouldNot(Receive())

		Expect(core.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
		DeferCleanup(func() { _ = core.cmd.Process.Signal(syscall.SIGCONT) })
		Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).Should(Equal(http.StatusServiceUnavailable))
		var lp response
		Eventually(waiting).WithContext(ctx).Should(Receive(&lp))
		Expect(lp.Status).To(Equal(http.StatusServiceUnavailable), "body: %s", lp.Body)
		Expect(string(lp.Body)).To(ContainSubstring(`"error":`))
		_, _, err := f.c.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusServiceRestart))
		// A new long-poll does not hang either.
		r := get(ctx, pollURL(e.URL, "/api/killfeed", "lp2", []int64{jita}, "wait", "30"))
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))

		Expect(core.cmd.Process.Signal(syscall.SIGCONT)).To(Succeed())
		Eventually(func() int { return readyz(ctx, e.URL) }).WithContext(ctx).Should(Equal(http.StatusOK))
		f.nodes = []string{e.URL}
		all := wsInsert(ctx, core.URL, jita, 2)
		Expect(f.connect(ctx, true)).To(Succeed())
		Expect(f.collect(ctx, 2)).To(Equal(all))
	}, SpecTimeout(90*time.Second))
})
