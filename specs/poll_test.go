package specs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/eventlog/logtest"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

const (
	jita  = int64(30000142)
	amarr = int64(30002187)
	quiet = int64(30002659)
)

// inSystem returns real killmails moved into one system, as a JSON array
// body and as parsed killmails.
func inSystem(system int64, from, n int) ([]byte, []killmail.Killmail) {
	kms := logtest.InSystem(system, from, n)
	var parts []string
	for _, km := range kms {
		var obj map[string]json.RawMessage
		Expect(json.Unmarshal(km.JSON, &obj)).To(Succeed())
		obj["solar_system_id"] = json.RawMessage(itoa(system))
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		parts = append(parts, string(b))
	}
	return []byte("[" + strings.Join(parts, ",") + "]"), kms
}

var _ = Describe("HTTP polling API", func() {
	var (
		kf   *app.App
		base string
	)
	insert := func(ctx SpecContext, system int64, from, n int) []uint64 {
		GinkgoHelper()
		body, _ := inSystem(system, from, n)
		return postKillmails(ctx, base, body)
	}
	poll := func(ctx SpecContext, client string, systems []int64, extra ...string) pollAnswer {
		GinkgoHelper()
		r := get(ctx, pollURL(base, "/api/killfeed", client, systems, extra...))
		Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
		var p pollAnswer
		r.JSON(&p)
		return p
	}
	next := func(ctx SpecContext, client string, systems []int64, extra ...string) (uint64, bool) {
		GinkgoHelper()
		r := get(ctx, pollURL(base, "/api/killfeed/next", client, systems, extra...))
		if r.Status == http.StatusNoContent {
			Expect(r.Body).To(BeEmpty())
			return 0, false
		}
		Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
		var ev struct {
			EventID  uint64          `json:"event_id"`
			SystemID int64           `json:"system_id"`
			Killmail json.RawMessage `json:"killmail"`
			Missed   *bool           `json:"missed"`
		}
		r.JSON(&ev)
		Expect(ev.Killmail).NotTo(BeEmpty())
		Expect(ev.Missed).NotTo(BeNil())
		return ev.EventID, true
	}

	BeforeEach(func() {
		kf = startKillfeed(app.Config{MaxEvents: 50})
		base = kf.URL()
	})

	Describe("the original design's scenarios", func() {
		It("returns three inserts in one system with increasing event ids", func(ctx SpecContext) {
			body, kms := inSystem(jita, 0, 3)
			r := post(ctx, base+"/api/killmails", body)
			Expect(r.Status).To(Equal(http.StatusCreated))
			Expect(r.Body).To(MatchJSON(`[{"event_id":1,"duplicate":false},{"event_id":2,"duplicate":false},{"event_id":3,"duplicate":false}]`))
			p := poll(ctx, "foo", []int64{jita})
			Expect(p.IDs()).To(Equal([]uint64{1, 2, 3}))
			for i, e := range p.Events {
				Expect(e.SystemID).To(Equal(jita))
				var got, want map[string]any
				Expect(json.Unmarshal(e.Killmail, &got)).To(Succeed())
				Expect(json.Unmarshal(kms[i].JSON, &want)).To(Succeed())
				Expect(got["killmail_id"]).To(Equal(want["killmail_id"]))
				// Every stored field of the victim, beside the names added (docs/names.md).
				for k, v := range want["victim"].(map[string]any) {
					Expect(got["victim"]).To(HaveKeyWithValue(k, v))
				}
				Expect(got["victim"]).To(HaveKey("ship_type_name"))
			}
		}, SpecTimeout(30*time.Second))

		It("answers an empty second poll, then only the new event from /next, then 204", func(ctx SpecContext) {
			insert(ctx, jita, 0, 3)
			Expect(poll(ctx, "foo", []int64{jita}).Events).To(HaveLen(3))
			p := poll(ctx, "foo", []int64{jita})
			Expect(p.Events).NotTo(BeNil())
			Expect(p.Events).To(BeEmpty())
			insert(ctx, jita, 3, 1)
			id, ok := next(ctx, "foo", []int64{jita})
			Expect(ok).To(BeTrue())
			Expect(id).To(Equal(uint64(4)))
			_, ok = next(ctx, "foo", []int64{jita})
			Expect(ok).To(BeFalse())
		}, SpecTimeout(30*time.Second))

		It("tracks two clients with overlapping systems independently", func(ctx SpecContext) {
			insert(ctx, jita, 0, 2)  // 1, 2
			insert(ctx, amarr, 2, 2) // 3, 4
			Expect(poll(ctx, "a", []int64{jita}).IDs()).To(Equal([]uint64{1, 2}))
			Expect(poll(ctx, "b", []int64{jita, amarr}).IDs()).To(Equal([]uint64{1, 2, 3, 4}))
			insert(ctx, jita, 4, 1) // 5
			Expect(poll(ctx, "a", []int64{jita, amarr}).IDs()).To(Equal([]uint64{3, 4, 5}))
			Expect(poll(ctx, "b", []int64{jita}).IDs()).To(Equal([]uint64{5}))
		}, SpecTimeout(30*time.Second))

		It("collects what every client has read and keeps the rest", func(ctx SpecContext) {
			insert(ctx, jita, 0, 4)
			poll(ctx, "a", []int64{jita})
			poll(ctx, "b", []int64{jita}, "limit", "2")
			st, err := kf.Actors().CollectGarbage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Through).To(Equal(uint64(2)))
			Expect(poll(ctx, "late", []int64{jita}).IDs()).To(Equal([]uint64{3, 4}))
		}, SpecTimeout(30*time.Second))
	})

	It("does not let a quiet system pin GC", func(ctx SpecContext) {
		poll(ctx, "watcher", []int64{quiet})
		insert(ctx, jita, 0, 3)
		poll(ctx, "watcher", []int64{quiet})
		poll(ctx, "reader", []int64{jita})
		st, err := kf.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(Equal(3))
	}, SpecTimeout(30*time.Second))

	It("says missed and oldest_event_id when caps dropped unread events", func(ctx SpecContext) {
		insert(ctx, jita, 0, 1)
		poll(ctx, "slow", []int64{jita})
		insert(ctx, jita, 1, 60) // cap is 50: ids 2..11 go unread
		p := poll(ctx, "slow", []int64{jita}, "limit", "5")
		Expect(p.Missed).To(BeTrue())
		Expect(p.OldestEventID).To(Equal(uint64(12)))
		Expect(p.IDs()).To(Equal([]uint64{12, 13, 14, 15, 16}))
		Expect(poll(ctx, "slow", []int64{jita}, "limit", "5").Missed).To(BeFalse())

		insert(ctx, amarr, 61, 1) // 62
		poll(ctx, "slow2", []int64{amarr})
		insert(ctx, amarr, 62, 55) // drops 62 and more, all before slow2 could read
		r := get(ctx, pollURL(base, "/api/killfeed/next", "slow2", []int64{amarr}))
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(r.Body).To(ContainSubstring(`"missed":true`))
		Expect(r.Body).To(ContainSubstring(`"oldest_event_id":`))
	}, SpecTimeout(30*time.Second))

	Describe("POST /api/killmails", func() {
		It("stores a killmail id once and answers 200 with the existing event id", func(ctx SpecContext) {
			line := fixture.Lines()[0]
			r := post(ctx, base+"/api/killmails", line)
			Expect(r.Status).To(Equal(http.StatusCreated))
			Expect(r.Body).To(MatchJSON(`{"event_id":1,"duplicate":false}`))
			r = post(ctx, base+"/api/killmails", line)
			Expect(r.Status).To(Equal(http.StatusOK))
			Expect(r.Body).To(MatchJSON(`{"event_id":1,"duplicate":true}`))
			r = post(ctx, base+"/api/killmails", []byte("["+string(fixture.Lines()[1])+","+string(line)+"]"))
			Expect(r.Status).To(Equal(http.StatusCreated))
			Expect(r.Body).To(MatchJSON(`[{"event_id":2,"duplicate":false},{"event_id":1,"duplicate":true}]`))
		}, SpecTimeout(30*time.Second))

		It("stores an R2Z2 file as its ESI killmail with the zkb block", func(ctx SpecContext) {
			r := post(ctx, base+"/api/killmails", mustRead(fixture.Path("testdata", "r2z2_134265477.json")))
			Expect(r.Status).To(Equal(http.StatusCreated))
			p := poll(ctx, "r2", []int64{30000743})
			Expect(p.Events).To(HaveLen(1))
			var km map[string]any
			Expect(json.Unmarshal(p.Events[0].Killmail, &km)).To(Succeed())
			Expect(km).To(HaveKeyWithValue("killmail_id", BeNumerically("==", 134265477)))
			Expect(km).To(HaveKey("attackers"))
			Expect(km).To(HaveKeyWithValue("zkb", HaveKeyWithValue("hash", "aa937ee180fca44b172de00f2a26e751f5b2a851")))
			Expect(km).NotTo(HaveKey("esi"))
			Expect(km).NotTo(HaveKey("sequence_id"))
		}, SpecTimeout(30*time.Second))

		It("rejects a whole array naming the invalid element, storing nothing", func(ctx SpecContext) {
			lines := fixture.Lines()
			body := "[" + string(lines[0]) + `,{"killmail_id":5}` + "]"
			r := post(ctx, base+"/api/killmails", []byte(body))
			Expect(r.Status).To(Equal(http.StatusBadRequest))
			Expect(r.Error()).To(And(ContainSubstring("body[1]"), ContainSubstring("solar_system_id")))
			Expect(kf.Actors().Stats().Head).To(BeZero())
		}, SpecTimeout(30*time.Second))

		DescribeTable("rejects bad bodies with a 4xx naming the field",
			func(ctx SpecContext, body string, status int, mentions string) {
				r := post(ctx, base+"/api/killmails", []byte(body))
				Expect(r.Status).To(Equal(status), "body: %s", r.Body)
				Expect(r.Error()).To(ContainSubstring(mentions))
				Expect(kf.Actors().Stats().Head).To(BeZero())
			},
			Entry("not JSON", `{"killmail_id":`, 400, "body"),
			Entry("not an object", `42`, 400, "object"),
			Entry("no killmail_id", `{"solar_system_id":30000142}`, 400, "killmail_id"),
			Entry("no solar_system_id", `{"killmail_id":1}`, 400, "solar_system_id"),
			Entry("a negative system", `{"killmail_id":1,"solar_system_id":-4}`, 400, "solar_system_id"),
			Entry("a killmail over 1 MiB", `{"killmail_id":1,"solar_system_id":30000142,"pad":"`+strings.Repeat("x", 1<<20)+`"}`, 413, "larger"),
			Entry("a body over 32 MiB", `[`+strings.Repeat(" ", 33<<20)+`]`, 413, "larger"),
		)

		It("requires the bearer token when one is set", func(ctx SpecContext) {
			secured := startKillfeed(app.Config{IngestToken: "s3cret"})
			line := fixture.Lines()[0]
			r := post(ctx, secured.URL()+"/api/killmails", line)
			Expect(r.Status).To(Equal(http.StatusUnauthorized))
			Expect(r.Error()).To(ContainSubstring("Authorization"))
			r = do(ctx, http.MethodPost, secured.URL()+"/api/killmails", line, http.Header{"Authorization": {"Bearer wrong"}})
			Expect(r.Status).To(Equal(http.StatusUnauthorized))
			r = do(ctx, http.MethodPost, secured.URL()+"/api/killmails", line, http.Header{"Authorization": {"Bearer s3cret"}})
			Expect(r.Status).To(Equal(http.StatusCreated))
		}, SpecTimeout(30*time.Second))
	})

	DescribeTable("rejects bad poll parameters with a 400 naming the parameter",
		func(ctx SpecContext, path, query, mentions string) {
			r := get(ctx, base+path+"?"+query)
			Expect(r.Status).To(Equal(http.StatusBadRequest), "body: %s", r.Body)
			Expect(r.Header.Get("Content-Type")).To(HavePrefix("application/json"))
			Expect(r.Error()).To(HavePrefix(mentions + ":"))
		},
		Entry("missing client_id", "/api/killfeed", "systems=1", "client_id"),
		Entry("malformed client_id", "/api/killfeed", "client_id=a%20b&systems=1", "client_id"),
		Entry("too long client_id", "/api/killfeed", "client_id="+strings.Repeat("a", 129)+"&systems=1", "client_id"),
		Entry("no systems", "/api/killfeed", "client_id=a", "systems"),
		Entry("non-numeric system", "/api/killfeed", "client_id=a&systems[]=jita", "systems"),
		Entry("zero system", "/api/killfeed", "client_id=a&systems=0", "systems"),
		Entry("negative system", "/api/killfeed/next", "client_id=a&systems=-1", "systems"),
		Entry("too many systems", "/api/killfeed", "client_id=a&systems="+manySystems(5001), "systems"),
		Entry("limit zero", "/api/killfeed", "client_id=a&systems=1&limit=0", "limit"),
		Entry("limit too big", "/api/killfeed", "client_id=a&systems=1&limit=10001", "limit"),
		Entry("wait too long", "/api/killfeed", "client_id=a&systems=1&wait=31", "wait"),
		Entry("wait not a number", "/api/killfeed/next", "client_id=a&systems=1&wait=soon", "wait"),
	)

	It("accepts systems as systems[]=, systems=1,2 and repeated systems=", func(ctx SpecContext) {
		insert(ctx, jita, 0, 1)
		insert(ctx, amarr, 1, 1)
		for i, q := range []string{
			fmt.Sprintf("systems[]=%d&systems[]=%d", jita, amarr),
			fmt.Sprintf("systems=%d,%d", jita, amarr),
			fmt.Sprintf("systems=%d&systems=%d", jita, amarr),
		} {
			r := get(ctx, fmt.Sprintf("%s/api/killfeed?client_id=c%d&%s", base, i, q))
			Expect(r.Status).To(Equal(http.StatusOK))
			var p pollAnswer
			r.JSON(&p)
			Expect(p.IDs()).To(Equal([]uint64{1, 2}), q)
		}
	}, SpecTimeout(30*time.Second))

	Describe("long-polling", func() {
		It("holds a poll until an event of its systems arrives, then answers it", func(ctx SpecContext) {
			insert(ctx, jita, 0, 1)
			poll(ctx, "lp", []int64{jita})
			answered := make(chan pollAnswer, 1)
			go func() {
				defer GinkgoRecover()
				answered <- poll(ctx, "lp", []int64{jita}, "wait", "30")
			}()
			Consistently(answered).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
			insert(ctx, amarr, 1, 1) // another system: no wake-up
			Consistently(answered).WithTimeout(200 * time.Millisecond).ShouldNot(Receive())
			insert(ctx, jita, 2, 1)
			var p pollAnswer
			Eventually(answered).WithTimeout(10 * time.Second).Should(Receive(&p))
			Expect(p.IDs()).To(Equal([]uint64{3}))
		}, SpecTimeout(30*time.Second))

		It("answers an empty batch after the wait, and /next answers 204", func(ctx SpecContext) {
			p := poll(ctx, "lp", []int64{jita}, "wait", "1")
			Expect(p.Events).To(BeEmpty())
			_, ok := next(ctx, "lp", []int64{jita}, "wait", "1")
			Expect(ok).To(BeFalse())
		}, SpecTimeout(30*time.Second))

		It("wakes /next too", func(ctx SpecContext) {
			got := make(chan uint64, 1)
			go func() {
				defer GinkgoRecover()
				id, ok := next(ctx, "lpn", []int64{jita}, "wait", "30")
				Expect(ok).To(BeTrue())
				got <- id
			}()
			Consistently(got).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
			insert(ctx, jita, 0, 2)
			Eventually(got).WithTimeout(10 * time.Second).Should(Receive(Equal(uint64(1))))
			id, ok := next(ctx, "lpn", []int64{jita})
			Expect(ok).To(BeTrue())
			Expect(id).To(Equal(uint64(2)))
		}, SpecTimeout(30*time.Second))

		It("keeps waiting when the event that woke it holds nothing for the client", func(ctx SpecContext) {
			poll(ctx, "lpt", []int64{jita})
			answered := make(chan pollAnswer, 1)
			go func() {
				defer GinkgoRecover()
				answered <- poll(ctx, "lpt", []int64{jita}, "wait", "30")
			}()
			Consistently(answered).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
			// The client has already been moved past event 1 (as when
			// another poll of it took it): event 1 wakes the long-poll,
			// whose fetch finds nothing for it.
			Expect(kf.Actors().Advance(ctx, "lpt", []int64{jita}, 1)).To(Succeed())
			Expect(insert(ctx, jita, 0, 1)).To(Equal([]uint64{1}))
			Consistently(answered).WithTimeout(300*time.Millisecond).ShouldNot(Receive(), "the long-poll answered empty before its wait")
			insert(ctx, jita, 1, 1)
			var p pollAnswer
			Eventually(answered).WithTimeout(10 * time.Second).Should(Receive(&p))
			Expect(p.IDs()).To(Equal([]uint64{2}))
		}, SpecTimeout(30*time.Second))
	})

	It("never gives one client the same event twice under concurrent polls", func(ctx SpecContext) {
		for i := range 4 {
			insert(ctx, jita, i*10, 10)
		}
		var mu sync.Mutex
		seen := map[uint64]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for range 10 {
					p := poll(ctx, "racer", []int64{jita}, "limit", "2")
					mu.Lock()
					for _, id := range p.IDs() {
						seen[id]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		Expect(seen).To(HaveLen(40))
		for id, n := range seen {
			Expect(n).To(Equal(1), "event %d", id)
		}
	}, SpecTimeout(30*time.Second))

	It("answers /healthz while the store answers", func(ctx SpecContext) {
		insert(ctx, jita, 0, 2)
		r := get(ctx, base+"/healthz")
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(r.Body).To(ContainSubstring(`"head":2`))
	}, SpecTimeout(30*time.Second))

	It("answers 503, not a hung request, when the store does not answer in time", func(ctx SpecContext) {
		slow := startKillfeed(app.Config{RequestTimeout: 300 * time.Millisecond})
		slow.Actors().System().Root.Send(slow.Actors().Store(), &actors.Stall{D: 2 * time.Second})
		r := get(ctx, pollURL(slow.URL(), "/api/killfeed", "x", []int64{jita}))
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Expect(r.Error()).To(ContainSubstring("unavailable"))
		r = get(ctx, slow.URL()+"/healthz")
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Eventually(func() int { return get(ctx, slow.URL()+"/healthz").Status }).
			WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
	}, SpecTimeout(30*time.Second))
})

func manySystems(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = itoa(int64(30000001 + i))
	}
	return strings.Join(parts, ",")
}
