package ingest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// fakeRedisQ answers /listen.php with a redirect to /redisq/listen.php,
// which hands out queued packages and then null packages.
type fakeRedisQ struct {
	*httptest.Server
	mu       sync.Mutex
	packages []string
	queries  []string
}

func newFakeRedisQ(packages ...string) *fakeRedisQ {
	f := &fakeRedisQ{packages: packages}
	mux := http.NewServeMux()
	mux.HandleFunc("/listen.php", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redisq/listen.php?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("/redisq/listen.php", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		pkg := "null"
		if len(f.packages) > 0 {
			pkg, f.packages = f.packages[0], f.packages[1:]
		}
		f.mu.Unlock()
		if pkg == "null" {
			time.Sleep(5 * time.Millisecond) // a short ttw
		}
		fmt.Fprintf(w, `{"package":%s}`, pkg)
	})
	f.Server = httptest.NewServer(mux)
	DeferCleanup(f.Close)
	return f
}

func (f *fakeRedisQ) firstQuery() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[0]
}

// fakeESI serves /killmails/{id}/{hash}/ from real killmails. failFirst
// ids answer 502 once; limited ids carry an error limit of 5 with a 1 s
// reset.
type fakeESI struct {
	*httptest.Server
	mu        sync.Mutex
	kms       map[string][]byte // "id/hash" -> ESI JSON
	failFirst map[string]bool
	limited   map[string]bool
	times     []time.Time
}

func newFakeESI() *fakeESI {
	f := &fakeESI{kms: map[string][]byte{}, failFirst: map[string]bool{}, limited: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.Trim(strings.TrimPrefix(r.URL.Path, "/killmails/"), "/")
		f.mu.Lock()
		f.times = append(f.times, time.Now())
		body, ok := f.kms[key]
		fail := f.failFirst[key]
		f.failFirst[key] = false
		limited := f.limited[key]
		f.mu.Unlock()
		w.Header().Set("X-ESI-Error-Limit-Remain", "100")
		w.Header().Set("X-ESI-Error-Limit-Reset", "30")
		if limited {
			w.Header().Set("X-ESI-Error-Limit-Remain", "5")
			w.Header().Set("X-ESI-Error-Limit-Reset", "1")
		}
		switch {
		case fail:
			w.WriteHeader(http.StatusBadGateway)
		case !ok:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"error":"Invalid killmail_id and/or killmail_hash"}`))
		default:
			_, _ = w.Write(body)
		}
	}))
	DeferCleanup(f.Close)
	return f
}

func (f *fakeESI) requestTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

// esiParts returns the id and hash of a fixture line and the line without
// killmail_hash (as ESI serves it).
func esiParts(line []byte) (int64, string, []byte) {
	GinkgoHelper()
	var m map[string]json.RawMessage
	Expect(json.Unmarshal(line, &m)).To(Succeed())
	var hash string
	Expect(json.Unmarshal(m["killmail_hash"], &hash)).To(Succeed())
	delete(m, "killmail_hash")
	esi, err := json.Marshal(m)
	Expect(err).NotTo(HaveOccurred())
	return parse(line).ID, hash, esi
}

var _ = Describe("RedisQ poller", func() {
	var (
		svc   *actors.Service
		lines [][]byte
	)
	BeforeEach(func() {
		svc = startService()
		lines = fixtureLines()
	})

	It("stores packages with the killmail, fetches the others from ESI, skips what cannot be stored", func(ctx SpecContext) {
		esi := newFakeESI()
		var want []killmail.Killmail
		var pkgs []string
		for i := range 6 {
			id, hash, body := esiParts(lines[i])
			key := fmt.Sprintf("%d/%s", id, hash)
			zkb := fmt.Sprintf(`{"locationID":1,"hash":%q,"totalValue":%d,"href":"%s/killmails/%s/"}`, hash, i, esi.URL, key)
			if i%2 == 0 {
				pkgs = append(pkgs, fmt.Sprintf(`{"killID":%d,"killmail":%s,"zkb":%s}`, id, body, zkb), "null")
			} else {
				esi.kms[key] = body
				pkgs = append(pkgs, fmt.Sprintf(`{"killID":%d,"zkb":%s}`, id, zkb))
			}
			km, err := killmail.FromESI(body, []byte(zkb))
			Expect(err).NotTo(HaveOccurred())
			want = append(want, km)
		}
		_, h1, _ := esiParts(lines[1])
		esi.failFirst[fmt.Sprintf("%d/%s", want[1].ID, h1)] = true
		_, h3, _ := esiParts(lines[3])
		esi.limited[fmt.Sprintf("%d/%s", want[3].ID, h3)] = true
		pkgs = append(pkgs,
			`{"killID":5,"zkb":{"hash":"0123abcd"}}`, // ESI does not know it
			`{"killID":6,"zkb":{"hash":"../../x"}}`,  // not a hash
			`{"something":"else"}`,
			pkgs[0], // a duplicate
		)

		fake := newFakeRedisQ(pkgs...)
		p, err := ingest.NewRedisQ(svc, ingest.RedisQConfig{
			URL: fake.URL + "/listen.php", Queue: "spec-queue", TTW: time.Second, Idle: time.Millisecond,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
			ESI: ingest.ESIConfig{URL: esi.URL}, Logger: testLogger(),
		})
		Expect(err).NotTo(HaveOccurred())
		runRunner(p.Run)

		Eventually(func() int64 { st := p.Stats(); return st.Inserted + st.Duplicates + st.Skipped }).
			WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal(int64(len(want) + 4)))
		st := p.Stats()
		Expect(st).To(haveRedisQCounts(want, 3))

		ids := make([]int64, len(want))
		for i, km := range want {
			ids[i] = km.ID
		}
		Expect(storedIDs(ctx, svc, systemsOf(want...))).To(Equal(ids))
		b, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.Of(systemsOf(want...))})
		Expect(err).NotTo(HaveOccurred())
		for i, ev := range b.Events {
			Expect(ev.Killmail).To(MatchJSON(want[i].JSON), "killmail %d with its zkb", want[i].ID)
		}
		Expect(fake.firstQuery()).To(And(ContainSubstring("queueID=spec-queue"), ContainSubstring("ttw=1")))

		// After the response with 5 errors left, ESI is not asked again
		// until the 1 s reset has passed.
		ts := esi.requestTimes()
		Expect(len(ts)).To(BeNumerically(">=", 5))
		limitedAt := -1
		for i := range ts {
			if i > 0 && ts[i].Sub(ts[i-1]) >= 900*time.Millisecond {
				limitedAt = i
			}
		}
		Expect(limitedAt).To(BeNumerically(">", 0), "a pause of about 1 s between ESI requests")
	}, SpecTimeout(20*time.Second))

	It("rejects a missing queue by flag name", func() {
		_, err := ingest.NewRedisQ(svc, ingest.RedisQConfig{URL: "http://127.0.0.1:1/listen.php"})
		Expect(err).To(MatchError(ContainSubstring("redisq-queue")))
	})
})

// haveRedisQCounts checks the poller's counters: every killmail stored once,
// fetched ones from ESI, the rest skipped or duplicate.
func haveRedisQCounts(want []killmail.Killmail, skipped int) OmegaMatcher {
	return And(
		HaveField("Inserted", int64(len(want))),
		HaveField("Fetched", int64(len(want)/2)),
		HaveField("Skipped", int64(skipped)),
		HaveField("Duplicates", int64(1)),
		HaveField("Empty", BeNumerically(">=", 3)),
	)
}
