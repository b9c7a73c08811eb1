package pebblestore_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	fx "github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// sharedDay is the first day of the shared corpus (17,862 killmails).
var sharedDay = fx.SharedData("killmails", "2021-11-27.jsonl.gz")

var day = sync.OnceValues(func() ([]killmail.Killmail, error) {
	return fx.ReadJSONL(sharedDay, 0)
})

// dayKillmails returns the shared day or skips the benchmark.
func dayKillmails(b *testing.B) []killmail.Killmail {
	b.Helper()
	if _, err := os.Stat(sharedDay); err != nil {
		b.Skipf("shared killmail corpus absent (%v): see /work/shared/data/README.md", err)
	}
	kms, err := day()
	if err != nil {
		b.Fatal(err)
	}
	return kms
}

// benchConfig never drops by caps during a benchmark.
var benchConfig = eventlog.Config{MaxEvents: 4_000_000, MaxBytes: 64 << 30}

// syncCounter counts WAL syncs, to show how many appends share one.
type syncCounter struct{ n atomic.Int64 }

func (c *syncCounter) fs() vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind >= errorfs.OpFileSync && op.Kind <= errorfs.OpFileSyncTo && strings.HasSuffix(op.Path, ".log") {
			c.n.Add(1)
		}
		return nil
	}))
}

// openBench opens a Log over a fresh Store in dir, or the memory backend
// when dir is "".
func openBench(b *testing.B, dir string, opts pebblestore.Options) *eventlog.Log {
	b.Helper()
	var store eventlog.Store
	if dir != "" {
		s, err := pebblestore.Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		store = s
	}
	l, err := eventlog.Open(benchConfig, store)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAppend appends one killmail per call from 1, 8 and 64 concurrent
// writers: durable (each Append returns once synced; writers share syncs)
// against the memory backend.
func BenchmarkAppend(b *testing.B) {
	kms := dayKillmails(b)
	for _, backend := range []string{"pebble", "memory"} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", backend, writers), func(b *testing.B) {
				var syncs syncCounter
				dir := ""
				if backend == "pebble" {
					dir = b.TempDir()
				}
				l := openBench(b, dir, pebblestore.Options{FS: syncs.fs()})
				defer l.Close()
				var next atomic.Int64
				var bytes atomic.Int64
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							km := kms[int(i)%len(kms)]
							km.ID = 1_000_000_000 + i
							if _, err := l.Append([]killmail.Killmail{km}, nil); err != nil {
								b.Error(err)
								return
							}
							bytes.Add(int64(len(km.JSON)))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
				b.ReportMetric(float64(bytes.Load())/elapsed.Seconds()/1e6, "MB/s")
				if backend == "pebble" {
					b.ReportMetric(float64(syncs.n.Load())/float64(b.N), "syncs/op")
				}
			})
		}
	}
}

// BenchmarkImportDay imports the real day 2021-11-27 (17,862 killmails)
// through Log.Append in batches, into a fresh store per iteration.
func BenchmarkImportDay(b *testing.B) {
	kms := dayKillmails(b)
	var total int64
	for _, km := range kms {
		total += int64(len(km.JSON))
	}
	for _, backend := range []string{"pebble", "memory"} {
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				b.SetBytes(total)
				for range b.N {
					b.StopTimer()
					dir := ""
					if backend == "pebble" {
						dir = b.TempDir()
					}
					l := openBench(b, dir, pebblestore.Options{})
					b.StartTimer()
					for i := 0; i < len(kms); i += batch {
						cur := &eventlog.Cursor{Name: "import", Value: uint64(i)}
						if _, err := l.Append(kms[i:min(i+batch, len(kms))], cur); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(kms))*float64(b.N)/b.Elapsed().Seconds(), "killmails/s")
			})
		}
	}
}

// million is the number of events retained in BenchmarkRetained.
const million = 1_000_000

// fill appends million killmails cycling through the day's bodies, in
// batches of 1,000.
func fill(b *testing.B, l *eventlog.Log, kms []killmail.Killmail) {
	b.Helper()
	batch := make([]killmail.Killmail, 0, 1000)
	for i := range million {
		km := kms[i%len(kms)]
		km.ID = int64(i) + 1
		batch = append(batch, km)
		if len(batch) == cap(batch) {
			if _, err := l.Append(batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// busiest returns the n systems with the most killmails in kms.
func busiest(kms []killmail.Killmail, n int) []int64 {
	count := map[int64]int{}
	for _, km := range kms {
		count[km.SystemID]++
	}
	var systems []int64
	for s := range count {
		systems = append(systems, s)
	}
	slices.SortFunc(systems, func(a, b int64) int { return count[b] - count[a] })
	return systems[:n]
}

// BenchmarkRetained builds a store of one million retained events (~2.4 GB
// of real bodies) once, then measures opening it and fetching from it,
// against the memory backend holding the same events.
func BenchmarkRetained(b *testing.B) {
	kms := dayKillmails(b)
	dir := filepath.Join(b.TempDir(), "data")
	start := time.Now()
	l := openBench(b, dir, pebblestore.Options{})
	fill(b, l, kms)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d events in %s: %.0f MB on disk", million, time.Since(start).Round(time.Millisecond), float64(dirSize(dir))/1e6)

	// Load is the store's share of Open: pebble open plus reading the index.
	b.Run("Load", func(b *testing.B) {
		for range b.N {
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ld, err := s.Load()
			if err != nil || len(ld.Records) != million {
				b.Fatalf("loaded %d records: %v", len(ld.Records), err)
			}
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	// Open is eventlog.Open over the store: Load plus rebuilding the index.
	b.Run("Open", func(b *testing.B) {
		for range b.N {
			l := openBench(b, dir, pebblestore.Options{})
			if got := l.Stats().Events; got != million {
				b.Fatalf("reopened with %d events", got)
			}
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})

	systems := busiest(kms, 10)
	pebbleLog := openBench(b, dir, pebblestore.Options{})
	defer pebbleLog.Close()
	memoryLog := openBench(b, "", pebblestore.Options{})
	fill(b, memoryLog, kms)
	// As in a running service, the newest events arrived while it ran: their
	// bodies are in the Log's memory cache (HotBytes); older ones, and
	// everything loaded at Open, are read from disk.
	for _, l := range []*eventlog.Log{pebbleLog, memoryLog} {
		for i := 0; i < 30_000; i += 1000 {
			batch := make([]killmail.Killmail, 1000)
			for j := range batch {
				batch[j] = kms[(i+j)%len(kms)]
				batch[j].ID = int64(million + i + j + 1)
			}
			if _, err := l.Append(batch, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, where := range []struct {
		name   string
		behind uint64 // how far behind the head the client may be
	}{{"random", million - 10_000}, {"recent", 20_000}} {
		b.Run("Fetch/"+where.name+"/pebble", func(b *testing.B) { benchFetch(b, pebbleLog, systems, where.behind) })
		b.Run("Fetch/"+where.name+"/memory", func(b *testing.B) { benchFetch(b, memoryLog, systems, where.behind) })
	}
}

// benchFetch polls 10 systems, up to 100 events a poll, as a new client
// positioned at a random point up to behind events before the head (and at
// least 10,000 before it, so that a poll is full).
func benchFetch(b *testing.B, l *eventlog.Log, systems []int64, behind uint64) {
	rng := rand.New(rand.NewPCG(1, 2))
	head := l.Head()
	events := 0
	b.ResetTimer()
	for i := range b.N {
		client := fmt.Sprintf("c%d", i)
		if err := l.Advance(client, systems, head-10_000-rng.Uint64N(behind-10_000)); err != nil {
			b.Fatal(err)
		}
		batch, err := l.Fetch(client, selection.Of(systems), 100)
		if err == nil {
			err = batch.ReadBodies()
		}
		if err != nil {
			b.Fatal(err)
		}
		events += len(batch.Events)
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}
