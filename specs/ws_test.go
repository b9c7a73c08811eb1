package specs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// wsKillmailIDs hands out fresh killmail ids, so that any number of real
// killmails can be inserted without being deduplicated.
var wsKillmailIDs atomic.Int64

func init() { wsKillmailIDs.Store(3_000_000_000) }

// wsFixture is the fixture's killmails decoded once.
var wsFixture = sync.OnceValue(func() []map[string]json.RawMessage {
	var out []map[string]json.RawMessage
	for _, line := range fixture.Lines() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			panic(err)
		}
		out = append(out, obj)
	}
	return out
})

// wsKillmails returns n real killmails moved into system with fresh ids, as
// a JSON array body.
func wsKillmails(system int64, n int) []byte {
	GinkgoHelper()
	all := wsFixture()
	parts := make([]string, n)
	for i := range parts {
		obj := maps.Clone(all[i%len(all)])
		obj["solar_system_id"] = json.RawMessage(itoa(system))
		obj["killmail_id"] = json.RawMessage(itoa(wsKillmailIDs.Add(1)))
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		parts[i] = string(b)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// wsInsert posts n killmails into system and returns their event ids.
func wsInsert(ctx context.Context, base string, system int64, n int) []uint64 {
	GinkgoHelper()
	r := post(ctx, base+"/api/killmails", wsKillmails(system, n))
	Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
	var res []struct {
		EventID uint64 `json:"event_id"`
	}
	r.JSON(&res)
	ids := make([]uint64, len(res))
	for i, x := range res {
		ids[i] = x.EventID
	}
	return ids
}

// wsFrame is any server frame of the native protocol.
type wsFrame struct {
	Type     string          `json:"type"`
	Systems  []int64         `json:"systems"`
	Head     uint64          `json:"head"`
	Missed   bool            `json:"missed"`
	EventID  uint64          `json:"event_id"`
	SystemID int64           `json:"system_id"`
	Killmail json.RawMessage `json:"killmail"`
	Error    string          `json:"error"`
}

type wsClient struct{ c *websocket.Conn }

// wsDial opens GET /api/ws; rcvBuf > 0 shrinks the client's TCP receive
// buffer (a slow reader fills it quickly).
func wsDial(ctx context.Context, base string, rcvBuf int) *wsClient {
	GinkgoHelper()
	opts := &websocket.DialOptions{}
	if rcvBuf > 0 {
		d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}}
		tr := &http.Transport{DialContext: d.DialContext}
		opts.HTTPClient = &http.Client{Transport: tr}
		DeferCleanup(tr.CloseIdleConnections)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ws", opts)
	Expect(err).NotTo(HaveOccurred())
	c.SetReadLimit(1 << 20)
	DeferCleanup(func() { _ = c.CloseNow() })
	return &wsClient{c: c}
}

func (w *wsClient) send(ctx context.Context, frame string) {
	GinkgoHelper()
	Expect(w.c.Write(ctx, websocket.MessageText, []byte(frame))).To(Succeed())
}

func (w *wsClient) next(ctx context.Context) wsFrame {
	GinkgoHelper()
	typ, b, err := w.c.Read(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(typ).To(Equal(websocket.MessageText))
	var f wsFrame
	Expect(json.Unmarshal(b, &f)).To(Succeed(), "frame: %s", b)
	return f
}

// killmails reads n killmail frames and returns their event ids.
func (w *wsClient) killmails(ctx context.Context, n int) []uint64 {
	GinkgoHelper()
	ids := make([]uint64, 0, n)
	for len(ids) < n {
		f := w.next(ctx)
		Expect(f.Type).To(Equal("killmail"), "frame %+v", f)
		Expect(f.Killmail).NotTo(BeEmpty())
		ids = append(ids, f.EventID)
	}
	return ids
}

// quiet asserts that nothing but the pong arrives before it.
func (w *wsClient) pingPong(ctx context.Context) {
	GinkgoHelper()
	w.send(ctx, `{"type":"ping"}`)
	Expect(w.next(ctx).Type).To(Equal("pong"))
}

func idsAfter(all []uint64, after uint64) []uint64 {
	out := []uint64{}
	for _, id := range all {
		if id > after {
			out = append(out, id)
		}
	}
	return out
}

var _ = Describe("websocket subscriptions (GET /api/ws)", func() {
	var (
		kf   *app.App
		base string
		cfg  app.Config
	)
	BeforeEach(func() { cfg = app.Config{} })
	JustBeforeEach(func() {
		kf = startKillfeed(cfg)
		base = kf.URL()
	})

	It("pushes the killmails of subscribed systems, verbatim and with event ids", func(ctx SpecContext) {
		wsInsert(ctx, base, jita, 2)
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
		Expect(ws.next(ctx)).To(Equal(wsFrame{Type: "subscribed", Systems: []int64{jita}, Head: 2}))

		amarrIDs := wsInsert(ctx, base, amarr, 2)
		jitaIDs := wsInsert(ctx, base, jita, 3)
		Expect(ws.killmails(ctx, 3)).To(Equal(jitaIDs))
		ws.pingPong(ctx)
		Expect(amarrIDs).To(HaveLen(2))

		// The pushed bytes are the stored killmail, as a poll returns it.
		wsInsert(ctx, base, jita, 1)
		f := ws.next(ctx)
		r := get(ctx, pollURL(base, "/api/killfeed", "verbatim", []int64{jita}))
		var p pollAnswer
		r.JSON(&p)
		last := p.Events[len(p.Events)-1]
		Expect(f.EventID).To(Equal(last.EventID))
		Expect(f.SystemID).To(Equal(jita))
		Expect(string(f.Killmail)).To(Equal(string(last.Killmail)))
	}, SpecTimeout(30*time.Second))

	It("stops pushing unsubscribed systems", func(ctx SpecContext) {
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142,30002187]}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		ws.send(ctx, `{"type":"unsubscribe","systems":[30002187]}`)
		Expect(ws.next(ctx)).To(Equal(wsFrame{Type: "unsubscribed", Systems: []int64{amarr}}))
		wsInsert(ctx, base, amarr, 2)
		ids := wsInsert(ctx, base, jita, 1)
		Expect(ws.killmails(ctx, 1)).To(Equal(ids))
		ws.pingPong(ctx)
	}, SpecTimeout(30*time.Second))

	It("resumes with since: exactly every later event, in order, while inserts run", func(ctx SpecContext) {
		var mu sync.Mutex
		var all []uint64
		add := func(ids []uint64) { mu.Lock(); all = append(all, ids...); mu.Unlock() }
		add(wsInsert(ctx, base, jita, 40))
		wsInsert(ctx, base, amarr, 10)
		since := all[14]

		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for range 30 {
				wsInsert(ctx, base, amarr, 2)
				add(wsInsert(ctx, base, jita, 3))
			}
		}()
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":`+itoa(int64(since))+`}`)
		sub := ws.next(ctx)
		Expect(sub.Type).To(Equal("subscribed"))
		Expect(sub.Missed).To(BeFalse())
		wg.Wait()
		mu.Lock()
		want := idsAfter(all, since)
		mu.Unlock()
		Expect(want).To(HaveLen(25 + 90))
		Expect(ws.killmails(ctx, len(want))).To(Equal(want))
		ws.pingPong(ctx) // and nothing twice
	}, SpecTimeout(60*time.Second))

	It("resumes a client_id where it stopped, and HTTP polling continues from there", func(ctx SpecContext) {
		first := wsInsert(ctx, base, jita, 5)
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","client_id":"ws-c1","systems":[30000142,30002659]}`)
		Expect(ws.next(ctx)).To(Equal(wsFrame{Type: "subscribed", Systems: []int64{jita, quiet}, Head: 5}))
		Expect(ws.killmails(ctx, 5)).To(Equal(first))
		live := wsInsert(ctx, base, jita, 3)
		Expect(ws.killmails(ctx, 3)).To(Equal(live))
		ws.pingPong(ctx) // every written event has advanced the offsets
		Expect(ws.c.Close(websocket.StatusNormalClosure, "")).To(Succeed())

		later := wsInsert(ctx, base, jita, 4)
		r := get(ctx, pollURL(base, "/api/killfeed", "ws-c1", []int64{jita, quiet}))
		var p pollAnswer
		r.JSON(&p)
		Expect(p.IDs()).To(Equal(later))

		// And back on a websocket: only what the poll did not return.
		more := wsInsert(ctx, base, jita, 2)
		ws2 := wsDial(ctx, base, 0)
		ws2.send(ctx, `{"type":"subscribe","client_id":"ws-c1","systems":[30000142]}`)
		Expect(ws2.next(ctx).Type).To(Equal("subscribed"))
		Expect(ws2.killmails(ctx, 2)).To(Equal(more))
		ws2.pingPong(ctx)
	}, SpecTimeout(30*time.Second))

	Context("with a tiny retention cap", func() {
		BeforeEach(func() { cfg.MaxEvents = 5 })

		It("says missed when part of the range was dropped, then sends what is retained", func(ctx SpecContext) {
			ids := wsInsert(ctx, base, jita, 20)
			_, err := kf.Actors().CollectGarbage(ctx)
			Expect(err).NotTo(HaveOccurred())
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":3}`)
			Expect(ws.next(ctx)).To(Equal(wsFrame{Type: "subscribed", Systems: []int64{jita}, Head: 20, Missed: true}))
			Expect(ws.killmails(ctx, 5)).To(Equal(ids[15:]))

			// Subscribing again sends nothing this connection was sent.
			ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":17}`)
			Expect(ws.next(ctx)).To(Equal(wsFrame{Type: "subscribed", Systems: []int64{jita}, Head: 20}))
			ws.pingPong(ctx)
			// Another connection gets them.
			other := wsDial(ctx, base, 0)
			other.send(ctx, `{"type":"subscribe","systems":[30000142],"since":17}`)
			Expect(other.next(ctx)).To(Equal(wsFrame{Type: "subscribed", Systems: []int64{jita}, Head: 20}))
			Expect(other.killmails(ctx, 3)).To(Equal(ids[17:]))
		}, SpecTimeout(30*time.Second))
	})

	Context("with a small buffer", func() {
		BeforeEach(func() {
			cfg.Websocket = transport.WebsocketConfig{Buffer: 256, WriteTimeout: 30 * time.Second}
		})

		It("closes a slow reader with 1008 while a fast one gets everything; the slow one resumes by since", func(ctx SpecContext) {
			fast := wsDial(ctx, base, 0)
			slow := wsDial(ctx, base, 4096)
			for _, ws := range []*wsClient{fast, slow} {
				ws.send(ctx, `{"type":"subscribe","systems":[30000142],"since":0}`)
				Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			}
			const batches, per = 60, 50
			fastGot := make(chan []uint64, 1)
			go func() {
				defer GinkgoRecover()
				fastGot <- fast.killmails(ctx, batches*per)
			}()
			var want []uint64
			for range batches {
				want = append(want, wsInsert(ctx, base, jita, per)...)
			}
			Eventually(fastGot).WithContext(ctx).Should(Receive(Equal(want)))
			fast.pingPong(ctx)

			// Now read the slow one: a prefix of the stream, then 1008.
			var got []uint64
			var err error
			for {
				var b []byte
				_, b, err = slow.c.Read(ctx)
				if err != nil {
					break
				}
				var f wsFrame
				Expect(json.Unmarshal(b, &f)).To(Succeed())
				got = append(got, f.EventID)
			}
			Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusPolicyViolation), "err: %v", err)
			Expect(err.Error()).To(ContainSubstring("slow consumer"))
			GinkgoWriter.Printf("slow reader got %d of %d before 1008\n", len(got), len(want))
			Expect(len(got)).To(BeNumerically("<", len(want)))
			Expect(got).To(Equal(want[:len(got)]))

			again := wsDial(ctx, base, 0)
			since := uint64(0)
			if len(got) > 0 {
				since = got[len(got)-1]
			}
			again.send(ctx, `{"type":"subscribe","systems":[30000142],"since":`+itoa(int64(since))+`}`)
			Expect(again.next(ctx).Type).To(Equal("subscribed"))
			Expect(again.killmails(ctx, len(want)-len(got))).To(Equal(want[len(got):]))
		}, SpecTimeout(120*time.Second))
	})

	Context("with small limits", func() {
		BeforeEach(func() {
			cfg.Websocket = transport.WebsocketConfig{MaxSystems: 3, ReadLimit: 1024}
		})

		It("answers bad frames with an error and stays open; a frame over the read limit closes with 1009", func(ctx SpecContext) {
			ws := wsDial(ctx, base, 0)
			for frame, msg := range map[string]string{
				`not json`:                                      "frame: not valid JSON",
				`[1,2]`:                                         "frame: must be a JSON object",
				`{"type":"nope"}`:                               `type: "nope" is not subscribe, unsubscribe or ping`,
				`{"systems":[1]}`:                               "type: required",
				`{"type":"subscribe","systems":[]}`:             "systems: at least one system id is required",
				`{"type":"subscribe","systems":["x"]}`:          "systems: must be",
				`{"type":"subscribe","systems":[-4]}`:           "systems: -4 is not a positive system id",
				`{"type":"subscribe","systems":[1],"since":-1}`: "since: must be",
				`{"type":"subscribe","systems":[1],"sinse":4}`:  `unknown field "sinse"`,
				`{"type":"subscribe","systems":[1],"since":1,"client_id":"a"}`: "since, client_id: give one or the other",
				`{"type":"subscribe","systems":[1],"client_id":"no spaces"}`:   "client_id: must be",
				`{"type":"subscribe","systems":[1,2,3,4]}`:                     "systems: more than 3 systems on this connection",
			} {
				ws.send(ctx, frame)
				f := ws.next(ctx)
				Expect(f.Type).To(Equal("error"), "frame %s", frame)
				Expect(f.Error).To(ContainSubstring(msg), "frame %s", frame)
			}
			Expect(ws.c.Write(ctx, websocket.MessageBinary, []byte(`{"type":"ping"}`))).To(Succeed())
			Expect(ws.next(ctx).Type).To(Equal("error"))
			ws.pingPong(ctx)

			ws.send(ctx, `{"type":"subscribe","systems":[1,2,3]}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			ws.send(ctx, `{"type":"subscribe","systems":[4]}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("more than 3 systems"))

			ws.send(ctx, `{"type":"ping","pad":"`+strings.Repeat("x", 2048)+`"}`)
			_, _, err := ws.c.Read(ctx)
			Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusMessageTooBig), "err: %v", err)
		}, SpecTimeout(30*time.Second))
	})

	Context("with allowed origins", func() {
		BeforeEach(func() {
			cfg.Websocket = transport.WebsocketConfig{AllowedOrigins: []string{"tools.example"}}
		})

		It("accepts listed origins and refuses others", func(ctx SpecContext) {
			url := "ws" + strings.TrimPrefix(base, "http") + "/api/ws"
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://tools.example"}}})
			Expect(err).NotTo(HaveOccurred())
			_ = c.CloseNow()
			_, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
			Expect(err).To(HaveOccurred())
			Expect(res.StatusCode).To(Equal(http.StatusForbidden))
		}, SpecTimeout(30*time.Second))
	})

	It("holds one goroutine per idle connection, also after pushing to it", func(ctx SpecContext) {
		const n = 40
		settle := func() int {
			runtime.GC()
			return runtime.NumGoroutine()
		}
		before := settle()
		var clients []*wsClient
		for range n {
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			clients = append(clients, ws)
		}
		// The server's frame reader per connection, and a few timers at most.
		Eventually(func() int { return settle() - before }).WithContext(ctx).
			Should(BeNumerically("~", n, 5))
		ids := wsInsert(ctx, base, jita, 3)
		for _, ws := range clients {
			Expect(ws.killmails(ctx, 3)).To(Equal(ids))
		}
		Eventually(func() int { return settle() - before }).WithContext(ctx).
			Should(BeNumerically("~", n, 5))
	}, SpecTimeout(30*time.Second))

	It("closes with 1012 when PubSub restarted, and the client resumes by since without a gap", func(ctx SpecContext) {
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		first := wsInsert(ctx, base, jita, 2)
		Expect(ws.killmails(ctx, 2)).To(Equal(first))

		svc := kf.Actors()
		svc.System().Root.Send(svc.PubSub(), &actors.Crash{})
		_, _, err := ws.c.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusServiceRestart))

		later := wsInsert(ctx, base, jita, 2) // while no one listens
		again := wsDial(ctx, base, 0)
		again.send(ctx, `{"type":"subscribe","systems":[30000142],"since":`+itoa(int64(first[1]))+`}`)
		Expect(again.next(ctx).Type).To(Equal("subscribed"))
		Expect(again.killmails(ctx, 2)).To(Equal(later))
		live := wsInsert(ctx, base, jita, 1)
		Expect(again.killmails(ctx, 1)).To(Equal(live))
	}, SpecTimeout(30*time.Second))

	It("reads a frame the client sent right behind its handshake", func(ctx SpecContext) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		sub := []byte(`{"type":"subscribe","systems":[30000142]}`)
		// A masked text frame with a zero mask key: the payload as is.
		frame := append([]byte{0x81, 0x80 | byte(len(sub)), 0, 0, 0, 0}, sub...)
		handshake := "GET /api/ws HTTP/1.1\r\nHost: killfeed\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		_, err = conn.Write(append([]byte(handshake), frame...)) // one segment
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.StatusCode).To(Equal(http.StatusSwitchingProtocols))
		var hdr [2]byte
		_, err = io.ReadFull(br, hdr[:])
		Expect(err).NotTo(HaveOccurred())
		Expect(hdr[0]).To(Equal(byte(0x81)))
		payload := make([]byte, hdr[1]&0x7f)
		_, err = io.ReadFull(br, payload)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(payload)).To(ContainSubstring(`"type":"subscribed"`))
	}, SpecTimeout(30*time.Second))

	It("leaves no goroutine behind once connections close", func(ctx SpecContext) {
		before := goleak.IgnoreCurrent()
		var clients []*wsClient
		for range 20 {
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","client_id":"leak","systems":[30000142]}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			clients = append(clients, ws)
		}
		wsInsert(ctx, base, jita, 3)
		for _, ws := range clients {
			Expect(ws.killmails(ctx, 3)).To(HaveLen(3))
			Expect(ws.c.Close(websocket.StatusNormalClosure, "")).To(Succeed())
		}
		Eventually(func() error {
			return goleak.Find(before,
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
				goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())
	}, SpecTimeout(30*time.Second))
})

var _ = Describe("websocket shutdown", func() {
	It("closes every websocket with 1001 and waits for them", func(ctx SpecContext) {
		a, err := app.Start(app.Config{Listen: "127.0.0.1:0", Storage: app.StorageMemory})
		Expect(err).NotTo(HaveOccurred())
		var clients []*wsClient
		for range 3 {
			ws := wsDial(ctx, a.URL(), 0)
			ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			clients = append(clients, ws)
		}
		done := make(chan error, 1)
		go func() { done <- a.Shutdown(ctx) }()
		for _, ws := range clients {
			_, _, err := ws.c.Read(ctx)
			Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusGoingAway), "err: %v", err)
		}
		Eventually(done).WithContext(ctx).Should(Receive(BeNil()))
	}, SpecTimeout(30*time.Second))
})
