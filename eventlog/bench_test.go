package eventlog_test

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// realDay loads one real day from ../shared/data, or skips the benchmark.
func realDay(b *testing.B) []killmail.Killmail {
	b.Helper()
	path := fixture.SharedData("killmails", "2021-11-27.jsonl.gz")
	if _, err := os.Stat(path); err != nil {
		b.Skipf("real corpus absent (%s): benchmarks need ../shared/data beside the module", path)
	}
	kms, err := fixture.ReadJSONL(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	return kms
}

// busiest returns the n most active systems of kms.
func busiest(kms []killmail.Killmail, n int) []int64 {
	count := map[int64]int{}
	for _, km := range kms {
		count[km.SystemID]++
	}
	systems := make([]int64, 0, len(count))
	for s := range count {
		systems = append(systems, s)
	}
	sort.Slice(systems, func(i, j int) bool { return count[systems[i]] > count[systems[j]] })
	return systems[:n]
}

// fill appends n events cycling through the real day's killmails (their
// systems keep the real spread), with fresh killmail ids.
func fill(b *testing.B, log *eventlog.Log, day []killmail.Killmail, n int, nextID *int64) {
	b.Helper()
	batch := make([]killmail.Killmail, 0, 1000)
	for i := range n {
		km := day[i%len(day)]
		*nextID++
		km.ID = *nextID
		batch = append(batch, km)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := log.Append(batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkFetch is one poll of a client following the 10 busiest systems,
// with 1k, 100k and 1M events retained. "idle" finds nothing new; "new"
// finds the one event appended since its last poll (the append is not timed).
func BenchmarkFetch(b *testing.B) {
	day := realDay(b)
	systems := busiest(day, 10)
	for _, retained := range []int{1_000, 100_000, 1_000_000} {
		log, err := eventlog.Open(eventlog.Config{MaxEvents: 2_000_000}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var nextID int64
		fill(b, log, day, retained, &nextID)
		if _, err := log.Fetch("bench", selection.Of(systems), 0); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("retained=%d/idle", retained), func(b *testing.B) {
			for b.Loop() {
				if _, err := log.Fetch("bench", selection.Of(systems), 1000); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("retained=%d/new", retained), func(b *testing.B) {
			km := day[0]
			km.SystemID = systems[0]
			for b.Loop() {
				b.StopTimer()
				nextID++
				km.ID = nextID
				if _, err := log.Append([]killmail.Killmail{km}, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := log.Fetch("bench", selection.Of(systems), 1000)
				if err != nil || len(res.Events) != 1 {
					b.Fatalf("fetch: %d events, %v", len(res.Events), err)
				}
			}
		})
		_ = log.Close()
	}
}

// BenchmarkMemoryPerEvent loads a real day into the memory backend and
// reports the heap it holds per byte of raw (compact) killmail JSON.
func BenchmarkMemoryPerEvent(b *testing.B) {
	day := realDay(b)
	var raw int64
	for _, km := range day {
		raw += int64(len(km.JSON))
	}
	for b.Loop() {
		// Fresh copies, so the log owns its bodies as it would after ingest.
		kms := make([]killmail.Killmail, len(day))
		for i, km := range day {
			km.JSON = append([]byte(nil), km.JSON...)
			kms[i] = km
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		log, err := eventlog.Open(eventlog.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(kms); i += 500 {
			if _, err := log.Append(kms[i:min(i+500, len(kms))], nil); err != nil {
				b.Fatal(err)
			}
		}
		kms = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		// The bodies were allocated before "before": count them back in.
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc) + raw
		b.ReportMetric(float64(held)/float64(raw), "heap/raw")
		b.ReportMetric(float64(held)/float64(len(day)), "heap-bytes/event")
		runtime.KeepAlive(log)
	}
}

// BenchmarkFetchFiltered is one poll of a client following one alliance
// (any side, every system), caught up, with 1k and 100k events retained:
// "idle" finds nothing new, "new" considers the one event appended since
// (not timed) and returns it when it matches.
func BenchmarkFetchFiltered(b *testing.B) {
	day := realDay(b)
	facts := make(map[int64]int)
	for _, km := range day {
		for _, id := range selection.Extract(km.JSON).Attackers[selection.Alliance] {
			facts[id]++
		}
	}
	var alliance int64
	for id, n := range facts {
		if n > facts[alliance] {
			alliance = id
		}
	}
	where, err := selection.Terms{Alliances: []int64{alliance}}.Compile()
	if err != nil {
		b.Fatal(err)
	}
	sel := selection.Selection{Systems: []int64{eventlog.AllSystems}, Where: where}
	for _, retained := range []int{1_000, 100_000} {
		log, err := eventlog.Open(eventlog.Config{MaxEvents: 2_000_000}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var nextID int64
		fill(b, log, day, retained, &nextID)
		for {
			res, err := log.Fetch("bench", sel, 0)
			if err != nil {
				b.Fatal(err)
			}
			if !res.More {
				break
			}
		}
		b.Run(fmt.Sprintf("retained=%d/idle", retained), func(b *testing.B) {
			for b.Loop() {
				if _, err := log.Fetch("bench", sel, 1000); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("retained=%d/new", retained), func(b *testing.B) {
			i := 0
			for b.Loop() {
				b.StopTimer()
				km := day[i%len(day)]
				i++
				nextID++
				km.ID = nextID
				if _, err := log.Append([]killmail.Killmail{km}, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if res, err := log.Fetch("bench", sel, 1000); err != nil || res.More {
					b.Fatalf("fetch: %v, more %v", err, res.More)
				}
			}
		})
		_ = log.Close()
	}
}
