package specs_test

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
)

// fixtureKillmails returns the raw lines of testdata/killmails.jsonl.gz.
func fixtureKillmails() [][]byte {
	GinkgoHelper()
	f, err := os.Open("../testdata/killmails.jsonl.gz")
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	zr, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 4<<20)
	var out [][]byte
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return out
}

var _ = Describe("Ingest", func() {
	It("relays the R2Z2 feed from the service's own poller", func(ctx SpecContext) {
		lines := fixtureKillmails()[:5]
		var mu sync.Mutex
		served := map[string]int{}
		r2z2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			served[r.URL.Path]++
			mu.Unlock()
			if r.URL.Path == "/feed/sequence.json" {
				fmt.Fprint(w, `{"sequence":500}`)
				return
			}
			var seq int
			if _, err := fmt.Sscanf(r.URL.Path, "/feed/%d.json", &seq); err != nil || seq < 500 || seq >= 500+len(lines) {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, `{"killmail_id":0,"hash":"x","esi":%s,"zkb":{"awox":false},"sequence_id":%d}`, lines[seq-500], seq)
		}))
		DeferCleanup(r2z2.Close)

		a := startKillfeed(app.Config{Ingest: app.IngestConfig{
			R2Z2Enabled: true,
			R2Z2: ingest.R2Z2Config{URL: r2z2.URL + "/feed", Idle: 10 * time.Millisecond, Rate: 100,
				BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
		}})
		var systems []int64
		var ids []int64
		for _, l := range lines {
			km, err := killmail.Parse(l)
			Expect(err).NotTo(HaveOccurred())
			systems, ids = append(systems, km.SystemID), append(ids, km.ID)
		}
		Eventually(func(g Gomega) {
			var p pollAnswer
			get(ctx, pollURL(a.URL(), "/api/killfeed", "spec-r2z2", systems)).JSON(&p)
			g.Expect(p.Head).To(BeNumerically(">=", len(lines)))
		}).WithContext(ctx).Should(Succeed())
		var p pollAnswer
		get(ctx, pollURL(a.URL(), "/api/killfeed", "spec-r2z2-all", systems)).JSON(&p)
		Expect(p.Events).To(HaveLen(len(lines)))
		for i, e := range p.Events {
			Expect(string(e.Killmail)).To(ContainSubstring(fmt.Sprintf(`"killmail_id":%d`, ids[i])))
			Expect(string(e.Killmail)).To(ContainSubstring(`"zkb":{"awox":false}`))
		}
		v, ok := a.Actors().Cursor(ingest.R2Z2Cursor)
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(uint64(500 + len(lines) - 1)))
	}, SpecTimeout(20*time.Second))

	It("imports files into a running instance, reporting broken lines", func(ctx SpecContext) {
		a := startKillfeed(app.Config{IngestToken: "s3cret"})
		dir := GinkgoT().TempDir()
		lines := fixtureKillmails()
		broken := filepath.Join(dir, "broken.jsonl")
		Expect(os.WriteFile(broken, []byte(strings.Join([]string{
			string(lines[0]), `{"killmail_id":`, string(lines[299]), `{"killmail_id":9,"solar_system_id":-1}`,
		}, "\n")), 0o600)).To(Succeed())

		sink := ingest.HTTPSink{URL: a.URL(), Token: "s3cret"}
		res, err := ingest.Import(ctx, sink, []string{"../testdata/killmails.jsonl.gz", broken},
			ingest.ImportConfig{BatchBytes: 128 << 10})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 304, Inserted: 300, Duplicates: 2, Rejected: 2}))
		Expect(res.Rejects).To(HaveLen(2))
		Expect(res.Rejects[0].String()).To(HavePrefix(broken + ":2: body is not valid JSON"))
		Expect(res.Rejects[1].String()).To(HavePrefix(broken + ":4: solar_system_id"))
		Expect(a.Actors().Stats().Events).To(Equal(300))

		_, err = ingest.Import(ctx, ingest.HTTPSink{URL: a.URL(), Token: "wrong"}, []string{broken}, ingest.ImportConfig{})
		Expect(err).To(MatchError(ingest.ErrUnauthorized))
	}, SpecTimeout(30*time.Second))
})
