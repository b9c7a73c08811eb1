package selection_test

import (
	"os"
	"testing"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/selection"
)

// realFacts extracts the facts of one real day from ../shared/data, or
// skips the benchmark.
func realFacts(b *testing.B) [][]byte {
	b.Helper()
	path := fixture.SharedData("killmails", "2021-11-27.jsonl.gz")
	if _, err := os.Stat(path); err != nil {
		b.Skipf("real corpus absent (%s)", path)
	}
	kms, err := fixture.ReadJSONL(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, len(kms))
	for i, km := range kms {
		out[i] = km.JSON
	}
	return out
}

// BenchmarkExtract is the facts of one killmail, taken once when it is
// stored.
func BenchmarkExtract(b *testing.B) {
	kms := realFacts(b)
	i := 0
	for b.Loop() {
		selection.Extract(kms[i%len(kms)])
		i++
	}
}

// BenchmarkMatch is one predicate over one event's facts: the cost per
// event per subscriber at fan-out.
func BenchmarkMatch(b *testing.B) {
	kms := realFacts(b)
	facts := make([]*selection.Facts, len(kms))
	for i, km := range kms {
		facts[i] = selection.Extract(km)
	}
	v := 1e9
	for _, c := range []struct {
		name  string
		terms selection.Terms
	}{
		{"alliance", selection.Terms{Alliances: []int64{99003581}}},
		{"corporations-10", selection.Terms{Corporations: []int64{98000001, 98000002, 98000003, 98000004, 98000005, 98000006, 98000007, 98000008, 98000009, 1000001}}},
		{"alliance-victim-min_value", selection.Terms{Alliances: []int64{99003581}, Side: "victim", MinValue: &v}},
		{"redisq-alliance_id", selection.Terms{Filter: "alliance_id=99003581"}},
	} {
		p, err := c.terms.Compile()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				p.Match(facts[i%len(facts)])
				i++
			}
		})
	}
}
