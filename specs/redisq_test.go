package specs_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
)

// EVE systems of the static data the topic specs use.
const (
	perimeter    = int64(30000144) // Kimotoro, The Forge, like Jita
	itamo        = int64(30000119) // another constellation of The Forge
	unknownSys   = int64(31999999) // not in the static data: no region
	theForge     = int64(10000002)
	domain       = int64(10000043) // Amarr's region
	kimotoro     = int64(20000020)
	amarrConstel = int64(20000322)
)

// zkbKillmails returns n real killmails moved into system with fresh ids,
// each with a zkb block (as zKillboard's feeds carry), as a JSON array body.
func zkbKillmails(system int64, n int, withZKB bool) []byte {
	GinkgoHelper()
	all := wsFixture()
	parts := make([]string, n)
	for i := range parts {
		obj := maps.Clone(all[i%len(all)])
		id := wsKillmailIDs.Add(1)
		obj["solar_system_id"] = json.RawMessage(itoa(system))
		obj["killmail_id"] = json.RawMessage(itoa(id))
		if withZKB {
			obj["zkb"] = json.RawMessage(`{"locationID":60003760,"hash":"h` + itoa(id) +
				`","fittedValue":10.5,"totalValue":` + itoa(id%1000) + `.25,"points":1,"npc":false,"solo":true,"awox":false,"labels":["pvp"]}`)
		}
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		parts[i] = string(b)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// insertZKB posts n killmails into system and returns the killmails as sent.
func insertZKB(ctx context.Context, base string, system int64, n int, withZKB bool) []map[string]json.RawMessage {
	GinkgoHelper()
	body := zkbKillmails(system, n, withZKB)
	r := post(ctx, base+"/api/killmails", body)
	Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
	var sent []map[string]json.RawMessage
	Expect(json.Unmarshal(body, &sent)).To(Succeed())
	return sent
}

// redisqPackage is what a RedisQ bot reads.
type redisqPackage struct {
	Package *struct {
		KillID   int64                      `json:"killID"`
		Killmail map[string]json.RawMessage `json:"killmail"`
		ZKB      json.RawMessage            `json:"zkb"`
	} `json:"package"`
}

// redisqBot is an HTTP client like the bots written against RedisQ: plain
// GETs, redirects followed.
var redisqBot = &http.Client{Timeout: 30 * time.Second}

func listen(ctx context.Context, u string) (int, redisqPackage, []byte) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	Expect(err).NotTo(HaveOccurred())
	res, err := redisqBot.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer res.Body.Close()
	var raw json.RawMessage
	Expect(json.NewDecoder(res.Body).Decode(&raw)).To(Succeed())
	var p redisqPackage
	if res.StatusCode == http.StatusOK {
		Expect(json.Unmarshal(raw, &p)).To(Succeed(), "body: %s", raw)
	}
	return res.StatusCode, p, raw
}

// listenServed listens until the request is served rather than refused
// with a 429 (a probe of the spec may hold the queue for a moment).
func listenServed(ctx context.Context, u string) (int, redisqPackage) {
	GinkgoHelper()
	for {
		status, p, _ := listen(ctx, u)
		if status != http.StatusTooManyRequests {
			return status, p
		}
	}
}

func listenURL(base, path, queue string, extra ...string) string {
	q := url.Values{}
	if queue != "" {
		q.Set("queueID", queue)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return base + path + "?" + q.Encode()
}

var _ = Describe("RedisQ compatibility (GET /listen.php)", func() {
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

	// register makes a queue's first request, as a bot does when it starts:
	// a new queue starts at the next killmail, like RedisQ's.
	register := func(ctx SpecContext, path, queue string, extra ...string) {
		GinkgoHelper()
		status, p, raw := listen(ctx, listenURL(base, path, queue, append([]string{"ttw", "1"}, extra...)...))
		Expect(status).To(Equal(http.StatusOK), "body: %s", raw)
		Expect(p.Package).To(BeNil())
	}

	It("starts a new queue at the next killmail, not the backlog", func(ctx SpecContext) {
		insertZKB(ctx, base, jita, 2, true)
		register(ctx, "/listen.php", "fresh")
		sent := insertZKB(ctx, base, amarr, 1, true)
		_, p, _ := listen(ctx, listenURL(base, "/listen.php", "fresh", "ttw", "1"))
		Expect(p.Package).NotTo(BeNil())
		Expect(p.Package.ZKB).To(MatchJSON(sent[0]["zkb"]))
		_, p, _ = listen(ctx, listenURL(base, "/listen.php", "fresh", "ttw", "1"))
		Expect(p.Package).To(BeNil())
	}, SpecTimeout(30*time.Second))

	It("hands a bot's loop every killmail once, in order, with killmail and zkb split like RedisQ", func(ctx SpecContext) {
		register(ctx, "/listen.php", "bot")
		register(ctx, "/api/redisq/listen.php", "other")
		sent := insertZKB(ctx, base, jita, 5, true)
		sent = append(sent, insertZKB(ctx, base, amarr, 3, true)...)
		sent = append(sent, insertZKB(ctx, base, unknownSys, 2, false)...)
		sent = append(sent, insertZKB(ctx, base, perimeter, 4, true)...)
		byID := map[int64]map[string]json.RawMessage{}
		var want []int64
		for _, km := range sent {
			var id int64
			Expect(json.Unmarshal(km["killmail_id"], &id)).To(Succeed())
			byID[id] = km
			want = append(want, id)
		}

		var got []int64
		// The bot: GET in a loop until a null package.
		for {
			status, p, raw := listen(ctx, listenURL(base, "/listen.php", "bot", "ttw", "1"))
			Expect(status).To(Equal(http.StatusOK), "body: %s", raw)
			if p.Package == nil {
				Expect(string(raw)).To(MatchJSON(`{"package":null}`))
				break
			}
			got = append(got, p.Package.KillID)
			Expect(p.Package.Killmail).NotTo(HaveKey("zkb"))
			var kmID int64
			Expect(json.Unmarshal(p.Package.Killmail["killmail_id"], &kmID)).To(Succeed())
			Expect(kmID).To(Equal(p.Package.KillID))
			orig, ok := byID[p.Package.KillID]
			Expect(ok).To(BeTrue(), "unknown killID %d", p.Package.KillID)
			{
				esi := maps.Clone(orig)
				delete(esi, "zkb")
				gotESI, _ := json.Marshal(p.Package.Killmail)
				wantESI, _ := json.Marshal(esi)
				Expect(gotESI).To(MatchJSON(wantESI))
				if z, has := orig["zkb"]; has {
					Expect(p.Package.ZKB).To(MatchJSON(z))
				} else {
					Expect(string(p.Package.ZKB)).To(Equal("null"))
				}
			}
		}
		Expect(got).To(Equal(want))
		seen := map[int64]bool{}
		for i, id := range got {
			Expect(seen[id]).To(BeFalse(), "killID %d delivered twice", id)
			seen[id] = true
			if i > 0 {
				Expect(id).To(BeNumerically(">", got[i-1])) // fresh ids ascend with event ids
			}
		}

		// A second queue gets the same killmails on its own, also under /api/redisq/.
		_, p, _ := listen(ctx, listenURL(base, "/api/redisq/listen.php", "other", "ttw", "1"))
		Expect(p.Package).NotTo(BeNil())
		Expect(p.Package.KillID).To(Equal(want[0]))
	}, SpecTimeout(30*time.Second))

	It("wakes a waiting listen when a killmail arrives, and answers a null package after ttw", func(ctx SpecContext) {
		status, p, raw := listen(ctx, listenURL(base, "/listen.php", "waiter", "ttw", "1"))
		Expect(status).To(Equal(http.StatusOK))
		Expect(p.Package).To(BeNil())
		Expect(string(raw)).To(Equal(`{"package":null}`))
		// Out-of-range and malformed ttw are clamped or defaulted, not refused.
		for _, ttw := range []string{"0", "-3"} {
			status, p, _ = listen(ctx, listenURL(base, "/listen.php", "waiter", "ttw", ttw))
			Expect(status).To(Equal(http.StatusOK))
			Expect(p.Package).To(BeNil())
		}

		got := make(chan redisqPackage, 1)
		go func() {
			defer GinkgoRecover()
			_, p := listenServed(ctx, listenURL(base, "/listen.php", "waiter", "ttw", "99")) // clamped to 10
			got <- p
		}()
		// Insert once the listen is waiting (a concurrent listen is refused).
		Eventually(func(g Gomega) {
			status, _, _ := listen(ctx, listenURL(base, "/listen.php", "waiter", "ttw", "1"))
			g.Expect(status).To(Equal(http.StatusTooManyRequests))
		}).WithContext(ctx).Should(Succeed())
		sent := insertZKB(ctx, base, jita, 1, true)
		var p2 redisqPackage
		Eventually(got).WithContext(ctx).Should(Receive(&p2))
		Expect(p2.Package).NotTo(BeNil())
		Expect(p2.Package.ZKB).To(MatchJSON(sent[0]["zkb"]))
	}, SpecTimeout(30*time.Second))

	It("answers a concurrent request for the same queue with 429, another queue is served", func(ctx SpecContext) {
		var wg sync.WaitGroup
		wg.Add(1)
		first := make(chan int, 1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			status, _ := listenServed(ctx, listenURL(base, "/listen.php", "busy", "ttw", "10"))
			first <- status
		}()
		Eventually(func(g Gomega) {
			status, _, raw := listen(ctx, listenURL(base, "/listen.php", "busy", "ttw", "1"))
			g.Expect(status).To(Equal(http.StatusTooManyRequests))
			g.Expect(string(raw)).To(ContainSubstring(`"error"`))
		}).WithContext(ctx).Should(Succeed())
		status, _, _ := listen(ctx, listenURL(base, "/listen.php", "free", "ttw", "1"))
		Expect(status).To(Equal(http.StatusOK))
		insertZKB(ctx, base, jita, 1, true)
		wg.Wait()
		Expect(<-first).To(Equal(http.StatusOK))
		// Once the first request answered, the queue is free again.
		status, _, _ = listen(ctx, listenURL(base, "/listen.php", "busy", "ttw", "1"))
		Expect(status).To(Equal(http.StatusOK))
	}, SpecTimeout(30*time.Second))

	DescribeTable("rejects a missing queueID or a malformed filter with a 400 and a JSON error",
		func(ctx SpecContext, query, mentions string) {
			r := get(ctx, base+"/listen.php?"+query)
			Expect(r.Status).To(Equal(http.StatusBadRequest), "body: %s", r.Body)
			Expect(r.Header.Get("Content-Type")).To(HavePrefix("application/json"))
			Expect(r.Error()).To(HavePrefix(mentions + ":"))
		},
		Entry("no queueID", "ttw=1", "queueID"),
		Entry("empty queueID", "queueID=&ttw=1", "queueID"),
		Entry("filter without a kind", "queueID=q&filter=30000142", "filter"),
		Entry("filter with an unknown kind", "queueID=q&filter=alliance:1", "filter"),
		Entry("filter with a bad id", "queueID=q&filter=system:abc", "filter"),
		Entry("filter with an empty term", "queueID=q&filter=system:30000142,,region:10000002", "filter"),
		Entry("filter with an unknown region", "queueID=q&filter=region:1", "filter"),
	)

	It("delivers only killmails matching any filter term", func(ctx SpecContext) {
		filters := map[string]string{
			"forge": "region:10000002",
			"mixed": "system:31999999, constellation:20000020,region:10000043",
			"jita":  "system:30000142,constellation:20000020",
		}
		for queue, filter := range filters {
			register(ctx, "/listen.php", queue, "filter", filter)
		}
		insertZKB(ctx, base, amarr, 1, true)      // Domain
		insertZKB(ctx, base, itamo, 1, true)      // The Forge
		insertZKB(ctx, base, unknownSys, 1, true) // no region
		insertZKB(ctx, base, perimeter, 1, true)  // Kimotoro, The Forge
		insertZKB(ctx, base, jita, 1, true)       // Kimotoro, The Forge
		collect := func(queue, filter string) []int64 {
			var systems []int64
			for {
				_, p, _ := listen(ctx, listenURL(base, "/listen.php", queue, "ttw", "1", "filter", filter))
				if p.Package == nil {
					return systems
				}
				var s int64
				Expect(json.Unmarshal(p.Package.Killmail["solar_system_id"], &s)).To(Succeed())
				systems = append(systems, s)
			}
		}
		Expect(collect("forge", filters["forge"])).To(Equal([]int64{itamo, perimeter, jita}))
		Expect(collect("mixed", filters["mixed"])).To(Equal([]int64{amarr, unknownSys, perimeter, jita}))
		Expect(collect("jita", filters["jita"])).To(Equal([]int64{perimeter, jita}))
	}, SpecTimeout(30*time.Second))

	Context("with a short client TTL", func() {
		BeforeEach(func() { cfg.ClientTTL = 300 * time.Millisecond })

		It("forgets an idle queue, which stops holding killmails back", func(ctx SpecContext) {
			register(ctx, "/listen.php", "idle")
			insertZKB(ctx, base, jita, 3, true)
			_, p, _ := listen(ctx, listenURL(base, "/listen.php", "idle", "ttw", "1"))
			Expect(p.Package).NotTo(BeNil())
			// A poll client that stays live has read everything; the queue idles.
			expired := 0
			Eventually(func(g Gomega) {
				g.Expect(get(ctx, pollURL(base, "/api/killfeed", "reader", []int64{jita})).Status).To(Equal(http.StatusOK))
				st, err := kf.Actors().CollectGarbage(ctx)
				g.Expect(err).NotTo(HaveOccurred())
				expired += st.ExpiredClients
				g.Expect(expired).To(BeNumerically(">=", 1))
				g.Expect(kf.Actors().Stats().Events).To(BeZero())
			}).WithContext(ctx).Should(Succeed())
			// The queue starts afresh: nothing retained, so a null package.
			_, p, _ = listen(ctx, listenURL(base, "/listen.php", "idle", "ttw", "1"))
			Expect(p.Package).To(BeNil())
		}, SpecTimeout(30*time.Second))
	})
})
