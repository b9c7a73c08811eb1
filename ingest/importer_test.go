package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
)

// writeLines writes lines as a JSON Lines file, gzipped when the name ends
// in .gz.
func writeLines(name string, lines ...[]byte) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), name)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	if filepath.Ext(name) == ".gz" {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(data)
		Expect(zw.Close()).To(Succeed())
		data = z.Bytes()
	}
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

var _ = Describe("Import", func() {
	It("imports the fixture in file order, and a second time as duplicates", func(ctx SpecContext) {
		svc := startService()
		var progress []ingest.ImportStats
		res, err := ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{fixture}, ingest.ImportConfig{
			BatchBytes: 64 << 10, // several batches
			Progress:   func(s ingest.ImportStats) { progress = append(progress, s) },
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 300, Inserted: 300}))
		Expect(res.Rejects).To(BeEmpty())
		Expect(progress).NotTo(BeEmpty())
		Expect(progress[len(progress)-1]).To(Equal(res.ImportStats))

		var want []killmail.Killmail
		var ids []int64
		for _, l := range fixtureLines() {
			km := parse(l)
			want, ids = append(want, km), append(ids, km.ID)
		}
		Expect(storedIDs(ctx, svc, systemsOf(want...))).To(Equal(ids))

		res, err = ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{fixture}, ingest.ImportConfig{})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 300, Duplicates: 300}))
	})

	It("reports broken lines by file and line and imports the rest", func(ctx SpecContext) {
		svc := startService()
		lines := fixtureLines()
		r2z2 := []byte(r2z2File(7, lines[3]))
		plain := writeLines("a.jsonl", lines[0], []byte(`{"killmail_id": 1, "attackers": [`), lines[1],
			[]byte(""), []byte(`   `), []byte(`[1,2]`), lines[2])
		gz := writeLines("b.jsonl.gz", r2z2, []byte(`{"killmail_id":5}`), []byte(`not json`), lines[0])
		res, err := ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{plain, gz}, ingest.ImportConfig{})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 9, Inserted: 4, Duplicates: 1, Rejected: 4}))
		Expect(res.Rejects).To(HaveLen(4))
		Expect(res.Rejects[0]).To(beRejected(plain, 2, "not valid JSON"))
		Expect(res.Rejects[1]).To(beRejected(plain, 6, "must be a JSON object"))
		Expect(res.Rejects[2]).To(beRejected(gz, 2, "solar_system_id"))
		Expect(res.Rejects[3]).To(beRejected(gz, 3, "not valid JSON"))
		Expect(res.Rejects[0].String()).To(HavePrefix(plain + ":2: "))
	})

	It("finds the culprits of a batch the sink refuses", func(ctx SpecContext) {
		lines := fixtureLines()
		bad := parse(lines[5]).ID
		sink := &refusingSink{refuse: bad}
		res, err := ingest.Import(ctx, sink, []string{writeLines("c.jsonl", lines[:20]...)}, ingest.ImportConfig{})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 20, Inserted: 19, Rejected: 1}))
		Expect(res.Rejects[0].Line).To(Equal(6))
		Expect(res.Rejects[0].Reason).To(Equal("refused"))
	})

	It("takes a UTF-8 byte order mark, a JSON array and pretty-printed JSON as well as JSON Lines", func(ctx SpecContext) {
		svc := startService()
		lines := fixtureLines()
		bom := writeLines("bom.jsonl", append([]byte("\xef\xbb\xbf"), lines[0]...), lines[1])
		array := writeLines("array.json", []byte("[\n  "+string(lines[2])+",\n  "+string(lines[3])+"\n]"))
		var pretty bytes.Buffer
		for _, l := range lines[4:6] {
			Expect(json.Indent(&pretty, l, "", "  ")).To(Succeed())
			pretty.WriteString("\n")
		}
		prettyFile := writeLines("pretty.json.gz", pretty.Bytes())
		badArray := writeLines("bad.json", []byte("["+string(lines[6])+`, {"killmail_id": 1}]`))
		res, err := ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{bom, array, prettyFile, badArray}, ingest.ImportConfig{})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 8, Inserted: 7, Rejected: 1}))
		Expect(res.Rejects[0]).To(beRejected(badArray, 2, "solar_system_id"))
		want := make([]int64, 7)
		for i := range want {
			want[i] = parse(lines[i]).ID
		}
		all := make([]killmail.Killmail, 7)
		for i := range all {
			all[i] = parse(lines[i])
		}
		Expect(storedIDs(ctx, svc, systemsOf(all...))).To(ConsistOf(want))
	})

	It("stops with an error on a truncated gzip file or a broken JSON array", func(ctx SpecContext) {
		lines := fixtureLines()
		gz := writeLines("cut.jsonl.gz", lines[:50]...)
		data, err := os.ReadFile(gz)
		Expect(err).NotTo(HaveOccurred())
		svc := startService()
		// Cut in the trailer: every line was read whole, and is imported
		// before the error stops the import.
		Expect(os.WriteFile(gz, data[:len(data)-4], 0o600)).To(Succeed())
		res, err := ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{gz}, ingest.ImportConfig{})
		Expect(err).To(MatchError(ContainSubstring("import " + gz + ": unexpected EOF")))
		Expect(res.ImportStats).To(Equal(ingest.ImportStats{Read: 50, Inserted: 50}))
		for _, cut := range []int{len(data) / 2, len(data) - 1, len(data) - 8, 12, 3} {
			Expect(os.WriteFile(gz, data[:cut], 0o600)).To(Succeed())
			_, err = ingest.Import(ctx, ingest.StoreSink{Store: svc}, []string{gz}, ingest.ImportConfig{})
			Expect(err).To(MatchError(ContainSubstring("import "+gz+": ")), "cut at %d of %d", cut, len(data))
			Expect(err).To(MatchError(ContainSubstring("unexpected EOF")), "cut at %d of %d", cut, len(data))
		}

		broken := writeLines("broken.json", []byte("["+string(lines[0])+", {"))
		_, err = ingest.Import(ctx, ingest.StoreSink{Store: startService()}, []string{broken}, ingest.ImportConfig{})
		Expect(err).To(MatchError(ContainSubstring("import " + broken + ": JSON value 2: unexpected EOF")))
	})

	It("stops on a file that cannot be read and on a failing sink", func(ctx SpecContext) {
		_, err := ingest.Import(ctx, ingest.StoreSink{Store: startService()}, []string{"/nonexistent.jsonl"}, ingest.ImportConfig{})
		Expect(err).To(MatchError(os.ErrNotExist))

		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(log.Close()).To(Succeed())
		res, err := ingest.Import(ctx, ingest.LogSink{Log: log}, []string{fixture}, ingest.ImportConfig{BatchBytes: 16 << 10})
		Expect(err).To(MatchError(eventlog.ErrClosed))
		Expect(res.Inserted).To(BeZero())
	}, SpecTimeout(10*time.Second))
})

// beRejected matches a Rejected.
func beRejected(file string, line int, reason string) OmegaMatcher {
	return And(HaveField("File", file), HaveField("Line", line), HaveField("Reason", ContainSubstring(reason)))
}

// refusingSink refuses, as a whole, every batch holding one killmail id,
// as POST /api/killmails does with an invalid element.
type refusingSink struct{ refuse int64 }

func (s *refusingSink) Insert(_ context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error) {
	res := make([]eventlog.AppendResult, len(kms))
	for i, km := range kms {
		if km.ID == s.refuse {
			return nil, &ingest.RejectError{Reason: "refused"}
		}
		res[i].EventID = uint64(i + 1)
	}
	return res, nil
}
