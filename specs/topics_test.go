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

// phxClient speaks Phoenix Channels v2 frames over a plain websocket.
type phxClient struct{ c *websocket.Conn }

type phxMsg struct {
	JoinRef, Ref, Topic, Event string
	Payload                    json.RawMessage
}

func (p *phxClient) send(ctx context.Context, joinRef, ref, topic, event, payload string) {
	GinkgoHelper()
	b, err := json.Marshal([]any{joinRef, ref, topic, event, json.RawMessage(payload)})
	Expect(err).NotTo(HaveOccurred())
	Expect(p.c.Write(ctx, websocket.MessageText, b)).To(Succeed())
}

func (p *phxClient) next(ctx context.Context) phxMsg {
	GinkgoHelper()
	_, b, err := p.c.Read(ctx)
	Expect(err).NotTo(HaveOccurred())
	var arr []json.RawMessage
	Expect(json.Unmarshal(b, &arr)).To(Succeed(), "frame: %s", b)
	Expect(arr).To(HaveLen(5))
	var m phxMsg
	for i, dst := range []*string{&m.JoinRef, &m.Ref, &m.Topic, &m.Event} {
		if string(arr[i]) != "null" {
			Expect(json.Unmarshal(arr[i], dst)).To(Succeed())
		}
	}
	m.Payload = arr[4]
	return m
}

// reply reads a phx_reply and returns its status.
func (p *phxClient) reply(ctx context.Context, topic string) string {
	GinkgoHelper()
	m := p.next(ctx)
	Expect(m.Event).To(Equal("phx_reply"), "frame %+v", m)
	Expect(m.Topic).To(Equal(topic))
	var r struct{ Status string }
	Expect(json.Unmarshal(m.Payload, &r)).To(Succeed())
	return r.Status
}

// push reads a new_killmail and returns its topic, join_ref and event id.
func (p *phxClient) push(ctx context.Context) (topic, joinRef string, eventID uint64) {
	GinkgoHelper()
	m := p.next(ctx)
	Expect(m.Event).To(Equal("new_killmail"), "frame %+v %s", m, m.Payload)
	var ev struct {
		EventID uint64 `json:"event_id"`
	}
	Expect(json.Unmarshal(m.Payload, &ev)).To(Succeed())
	return m.Topic, m.JoinRef, ev.EventID
}

func (p *phxClient) heartbeat(ctx context.Context) {
	GinkgoHelper()
	p.send(ctx, "", "hb", "phoenix", "heartbeat", "{}")
	Expect(p.reply(ctx, "phoenix")).To(Equal("ok"))
}

var _ = Describe("regions, constellations and all", func() {
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
	// insertIn inserts one killmail per system and returns the event ids.
	insertIn := func(ctx context.Context, systems ...int64) []uint64 {
		GinkgoHelper()
		var ids []uint64
		for _, s := range systems {
			ids = append(ids, wsInsert(ctx, base, s, 1)...)
		}
		return ids
	}
	poll := func(ctx context.Context, client string, systems []int64, extra ...string) pollAnswer {
		GinkgoHelper()
		r := get(ctx, pollURL(base, "/api/killfeed", client, systems, extra...))
		Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
		var p pollAnswer
		r.JSON(&p)
		return p
	}

	Context("over HTTP", func() {
		It("expands regions and constellations, merges them with systems, and returns each event once", func(ctx SpecContext) {
			ids := insertIn(ctx, jita, perimeter, itamo, amarr, unknownSys) // 1..5
			p := poll(ctx, "forge", []int64{jita, perimeter}, "regions[]", itoa(theForge), "constellations[]", itoa(kimotoro))
			Expect(p.IDs()).To(Equal(ids[:3]))
			Expect(poll(ctx, "kimotoro", nil, "constellations", itoa(kimotoro)).IDs()).To(Equal(ids[:2]))
			Expect(poll(ctx, "two", nil, "regions", itoa(theForge)+","+itoa(domain)).IDs()).To(Equal(ids[:4]))
			p = poll(ctx, "everything", []int64{amarr}, "all", "true", "regions[]", itoa(theForge))
			Expect(p.IDs()).To(Equal(ids))
			Expect(p.Events[4].SystemID).To(Equal(unknownSys))

			more := insertIn(ctx, itamo, amarr, unknownSys, jita)
			Expect(poll(ctx, "forge", []int64{jita, perimeter}, "regions[]", itoa(theForge)).IDs()).To(Equal([]uint64{more[0], more[3]}))
			Expect(poll(ctx, "everything", nil, "all", "true").IDs()).To(Equal(more))
			// next, one at a time, over all.
			for _, id := range append(ids, more...) {
				r := get(ctx, pollURL(base, "/api/killfeed/next", "one", nil, "all", "1"))
				Expect(r.Status).To(Equal(http.StatusOK))
				var ev struct {
					EventID uint64 `json:"event_id"`
				}
				r.JSON(&ev)
				Expect(ev.EventID).To(Equal(id))
			}
			Expect(get(ctx, pollURL(base, "/api/killfeed/next", "one", nil, "all", "1")).Status).To(Equal(http.StatusNoContent))
		}, SpecTimeout(30*time.Second))

		It("wakes a long-poll on a region or all when an event of it arrives", func(ctx SpecContext) {
			done := make(chan pollAnswer, 2)
			for _, extra := range [][]string{{"regions[]", itoa(theForge)}, {"all", "true"}} {
				go func() {
					defer GinkgoRecover()
					done <- poll(ctx, "waiting-"+extra[1], nil, append([]string{"wait", "20"}, extra...)...)
				}()
			}
			Consistently(done).WithTimeout(200 * time.Millisecond).ShouldNot(Receive())
			id := insertIn(ctx, itamo)
			for range 2 {
				var p pollAnswer
				Eventually(done).WithContext(ctx).Should(Receive(&p))
				Expect(p.IDs()).To(Equal(id))
			}
		}, SpecTimeout(30*time.Second))

		It("never lets a region client pin GC for systems it does not follow", func(ctx SpecContext) {
			insertIn(ctx, amarr, jita, amarr)
			poll(ctx, "forge", nil, "regions[]", itoa(theForge))
			poll(ctx, "domain", nil, "regions[]", itoa(domain))
			st, err := kf.Actors().CollectGarbage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Dropped).To(Equal(3))
			// An all client behind holds GC at its offset.
			insertIn(ctx, jita)
			poll(ctx, "all", nil, "all", "true", "limit", "1")
			insertIn(ctx, unknownSys)
			poll(ctx, "forge", nil, "regions[]", itoa(theForge))
			poll(ctx, "domain", nil, "regions[]", itoa(domain))
			st, err = kf.Actors().CollectGarbage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Through).To(Equal(uint64(4)))
		}, SpecTimeout(30*time.Second))

		DescribeTable("rejects bad topic parameters with a 400 naming the parameter",
			func(ctx SpecContext, query, mentions string) {
				r := get(ctx, base+"/api/killfeed?client_id=a&"+query)
				Expect(r.Status).To(Equal(http.StatusBadRequest), "body: %s", r.Body)
				Expect(r.Error()).To(HavePrefix(mentions + ":"))
			},
			Entry("unknown region", "regions[]=1", "regions"),
			Entry("unknown constellation", "constellations=99", "constellations"),
			Entry("non-numeric region", "regions[]=forge", "regions"),
			Entry("bad all", "all=yes", "all"),
			Entry("all=false alone", "all=false", "systems"),
		)

		Context("at the system cap", func() {
			It("counts a region's systems against the cap, but not all", func(ctx SpecContext) {
				// The Forge has 88 systems, Domain 189.
				ids := make([]string, 4900)
				for i := range ids {
					ids[i] = itoa(int64(40000001 + i)) // unknown systems: none in a region
				}
				many := strings.Join(ids, ",")
				r := get(ctx, base+"/api/killfeed?client_id=a&regions[]="+itoa(theForge)+"&systems="+many)
				Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
				r = get(ctx, base+"/api/killfeed?client_id=a&regions[]="+itoa(theForge)+"&regions[]="+itoa(domain)+"&systems="+many)
				Expect(r.Status).To(Equal(http.StatusBadRequest))
				Expect(r.Error()).To(ContainSubstring("more than 5000 systems"))
				r = get(ctx, base+"/api/killfeed?client_id=a&all=true&regions[]="+itoa(domain)+"&systems="+many)
				Expect(r.Status).To(Equal(http.StatusOK), "body: %s", r.Body)
			}, SpecTimeout(30*time.Second))
		})
	})

	Context("over HTTP with caps", func() {
		BeforeEach(func() { cfg.MaxEvents = 2 })

		It("says missed to an all client whose unread events the caps dropped", func(ctx SpecContext) {
			insertIn(ctx, jita)
			Expect(poll(ctx, "all", nil, "all", "true").Missed).To(BeFalse())
			ids := insertIn(ctx, amarr, unknownSys, itamo)
			p := poll(ctx, "all", nil, "all", "true")
			Expect(p.Missed).To(BeTrue())
			Expect(p.IDs()).To(Equal(ids[1:]))
		}, SpecTimeout(30*time.Second))
	})

	Context("over the native websocket", func() {
		It("follows systems, constellations, regions and all together, each event once, and resumes by since", func(ctx SpecContext) {
			early := insertIn(ctx, jita, perimeter) // 1, 2
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
			third := insertIn(ctx, jita)
			Expect(ws.killmails(ctx, 1)).To(Equal(third))

			// The region replays from since 0, minus what the jita follow sent.
			ws.send(ctx, `{"type":"subscribe","regions":[10000002],"constellations":[20000020],"since":0}`)
			f := ws.next(ctx)
			Expect(f.Type).To(Equal("subscribed"), "frame %+v", f)
			Expect(ws.killmails(ctx, 2)).To(Equal(early))
			live := insertIn(ctx, jita, amarr, itamo, perimeter)
			Expect(ws.killmails(ctx, 3)).To(Equal([]uint64{live[0], live[2], live[3]}))
			ws.pingPong(ctx)

			// Dropping the region keeps what other subscriptions name.
			ws.send(ctx, `{"type":"unsubscribe","regions":[10000002]}`)
			Expect(ws.next(ctx).Type).To(Equal("unsubscribed"))
			more := insertIn(ctx, itamo, perimeter, jita)
			Expect(ws.killmails(ctx, 2)).To(Equal(more[1:]))
			ws.pingPong(ctx)

			// all with since: everything after it once, including what the
			// other follows sent only once.
			ws.send(ctx, `{"type":"subscribe","all":true,"since":`+itoa(int64(more[2]))+`}`)
			sub := ws.next(ctx)
			Expect(sub.Type).To(Equal("subscribed"))
			last := insertIn(ctx, unknownSys, jita, amarr)
			Expect(ws.killmails(ctx, 3)).To(Equal(last))
			ws.pingPong(ctx)
		}, SpecTimeout(30*time.Second))

		It("replays a region and all by since with no duplicate and no gap while inserts run", func(ctx SpecContext) {
			before := insertIn(ctx, jita, amarr, itamo, unknownSys, perimeter)
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","regions":[10000002],"all":true,"systems":[30000142],"since":`+itoa(int64(before[1]))+`}`)
			f := ws.next(ctx)
			Expect(f.Type).To(Equal("subscribed"))
			after := insertIn(ctx, amarr, jita, unknownSys)
			Expect(ws.killmails(ctx, 6)).To(Equal(append(before[2:], after...)))
			ws.pingPong(ctx)
		}, SpecTimeout(30*time.Second))

		It("refuses unknown regions and counts expanded systems against the cap", func(ctx SpecContext) {
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","regions":[1]}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("regions: 1 is not a known region id"))
			ws.send(ctx, `{"type":"subscribe","regions":[-1]}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("regions: -1 is not a positive region id"))
			ws.send(ctx, `{"type":"subscribe","all":"yes"}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("all: must be true or false"))
			ws.send(ctx, `{"type":"subscribe","all":false}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("at least one"))
			ws.pingPong(ctx)
		}, SpecTimeout(30*time.Second))
	})

	Context("over the native websocket with a small cap", func() {
		BeforeEach(func() { cfg.Websocket.MaxSystems = 10 })

		It("counts a region's systems against the cap, but not all", func(ctx SpecContext) {
			ws := wsDial(ctx, base, 0)
			ws.send(ctx, `{"type":"subscribe","regions":[10000002]}`)
			Expect(ws.next(ctx).Error).To(ContainSubstring("more than 10 systems"))
			ws.send(ctx, `{"type":"subscribe","constellations":[20000020],"all":true}`)
			Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		}, SpecTimeout(30*time.Second))
	})

	Context("over Phoenix channels", func() {
		It("joins region, constellation and all topics; pushes each event once on the most specific topic", func(ctx SpecContext) {
			first := insertIn(ctx, amarr) // 1
			p := &phxClient{dialWS(ctx, base, "/socket/websocket?vsn=2.0.0")}
			p.send(ctx, "1", "1", "region:10000002", "phx_join", "{}")
			Expect(p.reply(ctx, "region:10000002")).To(Equal("ok"))
			p.send(ctx, "2", "2", "system:30000142", "phx_join", "{}")
			Expect(p.reply(ctx, "system:30000142")).To(Equal("ok"))
			p.send(ctx, "3", "3", "region:1", "phx_join", "{}")
			Expect(p.reply(ctx, "region:1")).To(Equal("error"))
			p.send(ctx, "4", "4", "galaxy:1", "phx_join", "{}")
			Expect(p.reply(ctx, "galaxy:1")).To(Equal("error"))

			ids := insertIn(ctx, jita, itamo) // 2, 3
			topic, ref, id := p.push(ctx)
			Expect([]any{topic, ref, id}).To(Equal([]any{"system:30000142", "2", ids[0]}))
			topic, ref, id = p.push(ctx)
			Expect([]any{topic, ref, id}).To(Equal([]any{"region:10000002", "1", ids[1]}))
			p.heartbeat(ctx)

			// all from since 0 replays only what was not pushed already.
			p.send(ctx, "5", "5", "all", "phx_join", `{"since":0}`)
			Expect(p.reply(ctx, "all")).To(Equal("ok"))
			topic, ref, id = p.push(ctx)
			Expect([]any{topic, ref, id}).To(Equal([]any{"all", "5", first[0]}))
			p.heartbeat(ctx)

			more := insertIn(ctx, perimeter, unknownSys, jita) // 4, 5, 6
			for i, want := range []string{"region:10000002", "all", "system:30000142"} {
				topic, _, id = p.push(ctx)
				Expect([]any{topic, id}).To(Equal([]any{want, more[i]}))
			}

			// Leaving the region hands its systems over to all.
			p.send(ctx, "1", "6", "region:10000002", "phx_leave", "{}")
			Expect(p.reply(ctx, "region:10000002")).To(Equal("ok"))
			Expect(p.next(ctx).Event).To(Equal("phx_close"))
			last := insertIn(ctx, itamo, jita)
			topic, _, id = p.push(ctx)
			Expect([]any{topic, id}).To(Equal([]any{"all", last[0]}))
			topic, _, id = p.push(ctx)
			Expect([]any{topic, id}).To(Equal([]any{"system:30000142", last[1]}))
			p.heartbeat(ctx)

			// Leaving all stops what only all held.
			p.send(ctx, "5", "7", "all", "phx_leave", "{}")
			Expect(p.reply(ctx, "all")).To(Equal("ok"))
			Expect(p.next(ctx).Event).To(Equal("phx_close"))
			after := insertIn(ctx, itamo, jita)
			topic, _, id = p.push(ctx)
			Expect([]any{topic, id}).To(Equal([]any{"system:30000142", after[1]}))
			p.heartbeat(ctx)
			// ... and no longer counts as having sent them.
			itamoTopic := "system:" + itoa(itamo)
			p.send(ctx, "8", "8", itamoTopic, "phx_join", `{"since":`+itoa(int64(after[0]-1))+`}`)
			Expect(p.reply(ctx, itamoTopic)).To(Equal("ok"))
			topic, _, id = p.push(ctx)
			Expect([]any{topic, id}).To(Equal([]any{itamoTopic, after[0]}))
		}, SpecTimeout(30*time.Second))

		It("resumes a constellation join by since without a gap", func(ctx SpecContext) {
			ids := insertIn(ctx, jita, amarr, perimeter, jita)
			p := &phxClient{dialWS(ctx, base, "/socket/websocket?vsn=2.0.0")}
			p.send(ctx, "1", "1", "constellation:20000020", "phx_join", `{"since":`+itoa(int64(ids[0]))+`}`)
			Expect(p.reply(ctx, "constellation:20000020")).To(Equal("ok"))
			for _, want := range []uint64{ids[2], ids[3]} {
				topic, _, id := p.push(ctx)
				Expect([]any{topic, id}).To(Equal([]any{"constellation:20000020", want}))
			}
			live := insertIn(ctx, amarr, perimeter)
			topic, _, id := p.push(ctx)
			Expect([]any{topic, id}).To(Equal([]any{"constellation:20000020", live[1]}))
		}, SpecTimeout(30*time.Second))
	})
})
