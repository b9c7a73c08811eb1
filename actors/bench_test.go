package actors_test

import (
	"context"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/universe"
)

// BenchmarkInsert is one killmail inserted through the KillmailStore actor
// (request-reply) on the memory backend, from parallel callers.
func BenchmarkInsert(b *testing.B) {
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { svc.Stop(); _ = log.Close() }()
	kms := fixture.Killmails()
	var id atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			km := kms[i%len(kms)]
			km.ID = id.Add(1)
			if _, err := svc.Insert(ctx, []killmail.Killmail{km}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkInsertDuringCatchUp is one killmail inserted on the disk
// backend while readers catch up from the start of a log just reopened,
// so that every body they read is on disk, as after a restart when every
// client resumes at once. Idle and loaded inserts alternate in phases of
// 100 within the run (b.N of each): before an idle phase the readers
// finish the page they are reading and wait, so that both kinds of insert
// meet the same machine, the same Pebble and the same garbage collector.
// It reports the latency of the inserts made while the readers read (p50,
// p99, max) beside that of the idle ones (idle-…), p99/idle-p99, their
// ratio, and read-events/s, the events the readers got per second of the
// loaded phases.
func BenchmarkInsertDuringCatchUp(b *testing.B) {
	const events, readers, page, phase = 30_000, 4, 1000, 100
	dir := b.TempDir()
	kms := fixture.Killmails()
	ctx := context.Background()
	svc, stop := startOnDisk(b, dir, nil)
	count := map[int64]int{}
	for i := 0; i < events; i += 500 {
		batch := make([]killmail.Killmail, 500)
		for j := range batch {
			batch[j] = kms[(i+j)%len(kms)]
			batch[j].ID = int64(i + j + 1)
			count[batch[j].SystemID]++
		}
		if _, err := svc.Insert(ctx, batch, nil); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	systems := make([]int64, 0, len(count))
	for s := range count {
		systems = append(systems, s)
	}
	slices.SortFunc(systems, func(x, y int64) int { return count[y] - count[x] })
	systems = systems[:10]

	svc, stop = startOnDisk(b, dir, nil)
	defer stop()
	id := int64(10 * events)
	// insert makes n inserts, appending their latencies to lat. Each is
	// marked in a runtime trace (-trace), to tell what a slow one waited
	// for.
	insert := func(lat []time.Duration, n int, kind string) []time.Duration {
		for range n {
			id++
			km := kms[int(id)%len(kms)]
			km.ID = id
			trace.Log(ctx, "insert", "begin "+kind)
			t := time.Now()
			if _, err := svc.Insert(ctx, []killmail.Killmail{km}, nil); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
			trace.Log(ctx, "insert", "end")
		}
		return lat
	}
	gate := newReadGate()
	var read atomic.Int64
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			after := uint64(0)
			for gate.enter() {
				bt, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.Of(systems), After: after, Limit: page})
				gate.leave()
				if err != nil {
					b.Error(err)
					return
				}
				read.Add(int64(len(bt.Events)))
				if len(bt.Events) < page {
					after = 0 // from the start again
				} else {
					after = bt.Events[len(bt.Events)-1].ID
				}
			}
		})
	}
	idle := make([]time.Duration, 0, b.N)
	lat := make([]time.Duration, 0, b.N)
	var loaded time.Duration // how long the readers were let read
	b.ResetTimer()
	for len(lat) < b.N {
		n := min(phase, b.N-len(lat))
		idle = insert(idle, n, "idle")
		start := time.Now()
		gate.open()
		lat = insert(lat, n, "loaded")
		gate.close() // returns once every reader waits
		loaded += time.Since(start)
	}
	b.StopTimer()
	gate.stop()
	wg.Wait()
	slices.Sort(idle)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p99 := func(lat []time.Duration) time.Duration { return lat[len(lat)*99/100] }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(p99(lat)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(ms(idle[len(idle)/2]), "idle-p50-ms")
	b.ReportMetric(ms(p99(idle)), "idle-p99-ms")
	b.ReportMetric(float64(p99(lat))/float64(p99(idle)), "p99/idle-p99")
	b.ReportMetric(float64(read.Load())/loaded.Seconds(), "read-events/s")
}

// readGate lets readers read only while it is open; close waits until
// none is reading.
type readGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	opened  bool
	stopped bool
	reading int
}

func newReadGate() *readGate {
	g := &readGate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter waits until the gate is open and counts the caller as reading;
// false means the gate stopped.
func (g *readGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.opened && !g.stopped {
		g.cond.Wait()
	}
	if g.stopped {
		return false
	}
	g.reading++
	return true
}

// leave ends a read begun by enter.
func (g *readGate) leave() {
	g.mu.Lock()
	g.reading--
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *readGate) open() {
	g.mu.Lock()
	g.opened = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

// close shuts the gate and waits for the reads under way.
func (g *readGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = false
	for g.reading > 0 {
		g.cond.Wait()
	}
}

// stop shuts the gate for good: enter returns false.
func (g *readGate) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

// BenchmarkFanOut publishes one real killmail to 10,000 subscriber queues
// that each follow one system (its topic), or one corporation or one
// alliance as a websocket subscription of corporations[] or alliances[]
// does on a core: the entity's topic, narrowed by the predicate over the
// event's facts. "alliances-every-event" follows the "all" topic instead,
// as on an edge, so that every subscriber is asked about every event. Ids
// are drawn from the day's parties, so they repeat. It reports delivered
// events per second and the 99th percentile from insert to hand-over.
func BenchmarkFanOut(b *testing.B) {
	const subscribers = 10_000
	day := fixture.Killmails()
	var systems, corps, alliances []int64
	seen := map[int64]bool{}
	for _, km := range day {
		if !seen[km.SystemID] {
			seen[km.SystemID] = true
			systems = append(systems, km.SystemID)
		}
		f := selection.Extract(km.JSON)
		for _, p := range append([]selection.Party{f.Victim}, selection.Party{}) {
			if p[selection.Corporation] != 0 {
				corps = append(corps, p[selection.Corporation])
			}
			if p[selection.Alliance] != 0 {
				alliances = append(alliances, p[selection.Alliance])
			}
		}
		corps = append(corps, f.Attackers[selection.Corporation]...)
		alliances = append(alliances, f.Attackers[selection.Alliance]...)
	}
	topics := transport.Topics(universe.Default())
	for _, follow := range []string{"systems", "corporations", "alliances", "alliances-every-event"} {
		b.Run("follow="+follow, func(b *testing.B) {
			log, err := eventlog.Open(eventlog.Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			svc, err := actors.Start(log, false, actors.Config{Topics: topics})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { svc.Stop(); _ = log.Close() }()
			ctx := context.Background()
			var delivered atomic.Int64
			var mu sync.Mutex
			var start time.Time
			lat := make([]time.Duration, 0, 1<<20)
			for i := range subscribers {
				var q *actors.Queue
				notify := func() {
					evs, _, _ := q.Take(nil)
					delivered.Add(int64(len(evs)))
					mu.Lock()
					if len(lat) < cap(lat) {
						lat = append(lat, time.Since(start))
					}
					mu.Unlock()
				}
				var err error
				switch follow {
				case "systems":
					q, err = svc.SubscribeQueue(ctx, 0, notify)
					if err == nil {
						err = q.Add(ctx, actors.SystemTopic(systems[i%len(systems)]))
					}
				default:
					terms := selection.Terms{Corporations: []int64{corps[i%len(corps)]}}
					if follow != "corporations" {
						terms = selection.Terms{Alliances: []int64{alliances[i%len(alliances)]}}
					}
					where, cerr := terms.Compile()
					if cerr != nil {
						b.Fatal(cerr)
					}
					k, ids, _ := where.Entities()
					topic := transport.EntityTopic(k, ids[0])
					if follow == "alliances-every-event" {
						topic = "all"
					}
					q, err = svc.SubscribeQueue(ctx, 0, notify)
					if err == nil {
						q.SetFilter(func(ev *actors.KillmailInserted) bool { return where.Match(ev.Facts) })
						err = q.Add(ctx, topic)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
			}
			barrier, err := svc.SubscribeQueue(ctx, 0, func() {})
			if err != nil {
				b.Fatal(err)
			}
			defer barrier.Close()
			var id int64 = 1 << 40
			i := 0
			for b.Loop() {
				km := day[i%len(day)]
				i++
				id++
				km.ID = id
				mu.Lock()
				start = time.Now()
				mu.Unlock()
				if _, err := svc.Insert(ctx, []killmail.Killmail{km}, nil); err != nil {
					b.Fatal(err)
				}
				if err := barrier.Add(ctx); err != nil { // PubSub handed the event over
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "delivered/s")
			b.ReportMetric(float64(delivered.Load())/float64(b.N), "delivered/event")
			mu.Lock()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			mu.Unlock()
		})
	}
}
