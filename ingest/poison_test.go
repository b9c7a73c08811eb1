package ingest_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
)

// poisons are killmails no client could decode once stored: a string that
// is not UTF-8, and arrays nested 5,000 deep (valid JSON, but past the
// recursion limit of Python's json). Every ingest path refuses them with
// killmail.Check's rules, naming the path.
var poisons = map[string]struct{ body, path string }{
	"invalid UTF-8": {"{\"killmail_id\":%d,\"solar_system_id\":30000142,\"victim\":{\"name\":\"\xff\xfe\"}}", "killmail.victim.name: string is not valid UTF-8"},
	"5,000 nested arrays": {"{\"killmail_id\":%d,\"solar_system_id\":30000142,\"x\":" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}",
		"nested deeper than 32 levels"},
}

func poison(name string, id int64) []byte { return fmt.Appendf(nil, poisons[name].body, id) }

var _ = Describe("Every ingest path refuses what a client cannot decode", func() {
	for name, p := range poisons {
		It("R2Z2 skips "+name+" and goes on", func(ctx SpecContext) {
			svc := startService()
			lines := fixtureLines()
			fake := newFakeR2Z2()
			fake.sequence = 100
			fake.add(100, fmt.Sprintf(`{"killmail_id":7,"hash":"abc","esi":%s,"zkb":{},"sequence_id":100}`, poison(name, 7)))
			fake.add(101, r2z2File(101, lines[0]))
			r, err := ingest.NewR2Z2(svc, ingest.R2Z2Config{URL: fake.URL + "/ephemeral", Idle: 10 * time.Millisecond, Rate: 50,
				Timeout: time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Logger: testLogger()})
			Expect(err).NotTo(HaveOccurred())
			runPoller(r)
			Eventually(func() uint64 { v, _ := svc.Cursor(ingest.R2Z2Cursor); return v }).WithContext(ctx).Should(Equal(uint64(101)))
			Expect(r.Stats().Skipped).To(Equal(int64(1)))
			Expect(storedIDs(ctx, svc, []int64{30000142, parse(lines[0]).SystemID})).To(Equal([]int64{parse(lines[0]).ID}))
		}, SpecTimeout(20*time.Second))

		It("RedisQ skips "+name+" and goes on", func(ctx SpecContext) {
			svc := startService()
			lines := fixtureLines()
			id, _, body := esiParts(lines[0])
			fake := newFakeRedisQ(
				fmt.Sprintf(`{"killID":8,"killmail":%s,"zkb":{"hash":"abc"}}`, poison(name, 8)),
				fmt.Sprintf(`{"killID":%d,"killmail":%s,"zkb":{"hash":"abc"}}`, id, body))
			q, err := ingest.NewRedisQ(svc, ingest.RedisQConfig{URL: fake.URL + "/listen.php", Queue: "poison", TTW: time.Second,
				Idle: time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Logger: testLogger()})
			Expect(err).NotTo(HaveOccurred())
			runRunner(q.Run)
			Eventually(func() int64 { return q.Stats().Inserted }).WithContext(ctx).Should(Equal(int64(1)))
			Expect(q.Stats().Skipped).To(Equal(int64(1)))
			Expect(storedIDs(ctx, svc, []int64{30000142, parse(lines[0]).SystemID})).To(Equal([]int64{id}))
		}, SpecTimeout(20*time.Second))

		It("import rejects "+name+" by file and line, naming the path", func(ctx SpecContext) {
			svc := startService()
			lines := fixtureLines()
			file := writeLines("poison.jsonl", poison(name, 9), lines[0])
			res, err := ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{file}, ingest.ImportConfig{})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 2, Inserted: 1, Rejected: 1}))
			Expect(res.Rejects[0]).To(beRejected(file, 1, p.path))
		})
	}

	It("the rule is killmail.Check's, whatever the wrapper", func() {
		for name := range poisons {
			_, err := killmail.Parse(poison(name, 1))
			Expect(err).To(MatchError(ContainSubstring(poisons[name].path)))
		}
	})
})
