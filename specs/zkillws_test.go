package specs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
)

// dialWS opens a websocket on path.
func dialWS(ctx context.Context, base, path string) *websocket.Conn {
	GinkgoHelper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path, nil)
	Expect(err).NotTo(HaveOccurred())
	c.SetReadLimit(1 << 20)
	DeferCleanup(func() { _ = c.CloseNow() })
	return c
}

type zkillClient struct{ c *websocket.Conn }

func (z *zkillClient) send(ctx context.Context, frame string) {
	GinkgoHelper()
	Expect(z.c.Write(ctx, websocket.MessageText, []byte(frame))).To(Succeed())
}

// next reads one frame as a JSON object.
func (z *zkillClient) next(ctx context.Context) (map[string]json.RawMessage, []byte) {
	GinkgoHelper()
	typ, b, err := z.c.Read(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(typ).To(Equal(websocket.MessageText))
	var obj map[string]json.RawMessage
	Expect(json.Unmarshal(b, &obj)).To(Succeed(), "frame: %s", b)
	return obj, b
}

// sync sends a frame the server refuses and reads up to its answer: every
// frame sent before it was carried out. It returns the killmails pushed
// meanwhile, as (solar_system_id, killmail_id) pairs in order.
func (z *zkillClient) sync(ctx context.Context) [][2]int64 {
	GinkgoHelper()
	z.send(ctx, `{"action":"sync"}`)
	var got [][2]int64
	for {
		obj, b := z.next(ctx)
		if string(obj["action"]) == `"error"` {
			Expect(string(obj["error"])).To(ContainSubstring(`\"sync\" is not sub or unsub`))
			return got
		}
		Expect(obj).To(HaveKey("zkb"), "frame: %s", b)
		var sys, id int64
		Expect(json.Unmarshal(obj["solar_system_id"], &sys)).To(Succeed())
		Expect(json.Unmarshal(obj["killmail_id"], &id)).To(Succeed())
		got = append(got, [2]int64{sys, id})
	}
}

func systemsOf(pairs [][2]int64) []int64 {
	out := []int64{}
	for _, p := range pairs {
		out = append(out, p[0])
	}
	return out
}

var _ = Describe("zKillboard-style websocket (GET /websocket/)", func() {
	var (
		kf   *app.App
		base string
	)
	JustBeforeEach(func() {
		kf = startKillfeed(app.Config{})
		base = kf.URL()
	})

	It("pushes every killmail on killstream as the stored killmail with its zkb block", func(ctx SpecContext) {
		insertZKB(ctx, base, jita, 1, true) // before the sub: not pushed
		z := &zkillClient{dialWS(ctx, base, "/websocket/")}
		z.send(ctx, `{"action":"sub","channel":"killstream"}`)
		Expect(z.sync(ctx)).To(BeEmpty())
		insertZKB(ctx, base, jita, 1, true)
		insertZKB(ctx, base, unknownSys, 1, true)
		insertZKB(ctx, base, amarr, 1, true)
		var frames [][]byte
		for range 3 {
			_, b := z.next(ctx)
			frames = append(frames, b)
		}
		r := get(ctx, pollURL(base, "/api/killfeed", "cmp", nil, "all", "true", "names", "false"))
		Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
		var p pollAnswer
		r.JSON(&p)
		Expect(p.Events).To(HaveLen(4))
		for i, f := range frames {
			Expect(string(f)).To(Equal(string(p.Events[i+1].Killmail))) // verbatim
		}
		Expect(z.sync(ctx)).To(BeEmpty())
	}, SpecTimeout(30*time.Second))

	It("pushes a killmail once however many subscribed channels it matches, and unsubscribes", func(ctx SpecContext) {
		z := &zkillClient{dialWS(ctx, base, "/websocket")}
		for _, ch := range []string{"system:30000142", "constellation:20000020", "region:10000002"} {
			z.send(ctx, `{"action":"sub","channel":"`+ch+`"}`)
		}
		z.send(ctx, `{"action":"sub","channel":"region:10000002"}`) // again: no effect
		Expect(z.sync(ctx)).To(BeEmpty())
		for _, sys := range []int64{jita, perimeter, itamo, amarr, unknownSys, jita} {
			insertZKB(ctx, base, sys, 1, true)
		}
		got := z.sync(ctx)
		// The sync may overtake pushes still in flight: read on until all came.
		for len(got) < 4 {
			got = append(got, z.sync(ctx)...)
		}
		Expect(systemsOf(got)).To(Equal([]int64{jita, perimeter, itamo, jita}))

		z.send(ctx, `{"action":"unsub","channel":"region:10000002"}`)
		Expect(z.sync(ctx)).To(BeEmpty())
		for _, sys := range []int64{itamo, perimeter, jita} {
			insertZKB(ctx, base, sys, 1, true)
		}
		got = nil
		for len(got) < 2 {
			got = append(got, z.sync(ctx)...)
		}
		Expect(systemsOf(got)).To(Equal([]int64{perimeter, jita}))

		z.send(ctx, `{"action":"unsub","channel":"constellation:20000020"}`)
		z.send(ctx, `{"action":"unsub","channel":"system:30000142"}`)
		z.send(ctx, `{"action":"sub","channel":"killstream"}`)
		z.send(ctx, `{"action":"sub","channel":"system:30002187"}`) // inside killstream
		Expect(z.sync(ctx)).To(BeEmpty())
		insertZKB(ctx, base, amarr, 1, true)
		insertZKB(ctx, base, itamo, 1, true)
		got = nil
		for len(got) < 2 {
			got = append(got, z.sync(ctx)...)
		}
		Expect(systemsOf(got)).To(Equal([]int64{amarr, itamo}))
		z.send(ctx, `{"action":"unsub","channel":"killstream"}`)
		z.send(ctx, `{"action":"unsub","channel":"system:30002187"}`)
		Expect(z.sync(ctx)).To(BeEmpty())
		insertZKB(ctx, base, amarr, 1, true)
		Consistently(func() [][2]int64 { return z.sync(ctx) }).WithTimeout(300 * time.Millisecond).Should(BeEmpty())
	}, SpecTimeout(30*time.Second))

	It("answers bad frames with an error and stays open", func(ctx SpecContext) {
		z := &zkillClient{dialWS(ctx, base, "/websocket/")}
		for frame, msg := range map[string]string{
			`not json`:                 "frame: not valid JSON",
			`[1]`:                      "frame: must be a JSON object",
			`{"channel":"killstream"}`: "action: required",
			`{"action":"subscribe","channel":"killstream"}`: `action: \"subscribe\" is not sub or unsub`,
			`{"action":"sub"}`:                             "channel:",
			`{"action":"sub","channel":"planet:99"}`:       `channel: \"planet:99\" is not killstream`,
			`{"action":"sub","channel":"group:999999999"}`: "channel: groups: 999999999 is not a known group id",
			`{"action":"sub","channel":"system:jita"}`:     "channel:",
			`{"action":"sub","channel":"region:1"}`:        "regions: 1 is not a known region id",
			`{"action":"sub","channel":7}`:                 "channel: must be a string",
		} {
			z.send(ctx, frame)
			obj, b := z.next(ctx)
			Expect(string(obj["action"])).To(Equal(`"error"`), "frame %s: %s", frame, b)
			Expect(string(obj["error"])).To(ContainSubstring(msg), "frame %s", frame)
		}
		Expect(z.c.Write(ctx, websocket.MessageBinary, []byte(`{"action":"sub","channel":"killstream"}`))).To(Succeed())
		obj, _ := z.next(ctx)
		Expect(string(obj["action"])).To(Equal(`"error"`))

		z.send(ctx, `{"action":"sub","channel":"system:30000142"}`)
		Expect(z.sync(ctx)).To(BeEmpty())
		insertZKB(ctx, base, jita, 1, true)
		obj, _ = z.next(ctx)
		Expect(obj).To(HaveKey("zkb"))
	}, SpecTimeout(30*time.Second))

	It("closes with 1001 when the server shuts its websockets", func(ctx SpecContext) {
		z := &zkillClient{dialWS(ctx, base, "/websocket/")}
		z.send(ctx, `{"action":"sub","channel":"killstream"}`)
		Expect(z.sync(ctx)).To(BeEmpty())
		Expect(kf.API().CloseWebsockets(ctx)).To(Succeed())
		_, _, err := z.c.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusGoingAway), "err: %v", err)
	}, SpecTimeout(30*time.Second))
})
