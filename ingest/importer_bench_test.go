package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
)

// corpus is the larger shared data set; benchmarks skip without it.
const corpus = "../../shared/data/killmails"

type discardSink struct{}

func (discardSink) Insert(_ context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error) {
	return make([]eventlog.AppendResult, len(kms)), nil
}

// BenchmarkImportParse measures reading and validating one real day
// (17,862 killmails, gzip) without storing it.
func BenchmarkImportParse(b *testing.B) {
	day := filepath.Join(corpus, "2021-11-27.jsonl.gz")
	if _, err := os.Stat(day); err != nil {
		b.Skipf("corpus absent: %v", err)
	}
	var n int64
	for b.Loop() {
		res, err := ingest.Import(context.Background(), discardSink{}, []string{day}, ingest.ImportConfig{})
		if err != nil {
			b.Fatal(err)
		}
		n = res.Read
	}
	b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "killmails/s")
}

// BenchmarkImportMemory imports one real day into a memory event log.
func BenchmarkImportMemory(b *testing.B) {
	day := filepath.Join(corpus, "2021-11-27.jsonl.gz")
	if _, err := os.Stat(day); err != nil {
		b.Skipf("corpus absent: %v", err)
	}
	var n int64
	for b.Loop() {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := ingest.Import(context.Background(), ingest.LogSink{Log: log}, []string{day}, ingest.ImportConfig{})
		if err != nil {
			b.Fatal(err)
		}
		n = res.Inserted
		_ = log.Close()
	}
	b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "killmails/s")
}
