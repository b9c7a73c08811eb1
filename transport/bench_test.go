package transport_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// serve runs h on a loopback port until the benchmark ends.
func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

// benchSystems are the 10 systems a benchmark poll follows.
const benchSystems = "&systems=30004779,30002874,30000021,32000133,30002813,30000142,30002187,30002659,30045328,30003504"

// pollServer is the API over the memory backend holding the fixture's
// killmails, stopped when the benchmark ends.
func pollServer(b *testing.B) http.Handler {
	b.Helper()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Stop(); _ = log.Close() })
	if _, err := svc.Insert(context.Background(), fixture.Killmails(), nil); err != nil {
		b.Fatal(err)
	}
	return transport.New(svc, transport.Config{Limits: transport.NoLimits()}).Handler() // one address polls as fast as it can
}

// hammer GETs a URL from parallel clients over keep-alive connections and
// reports requests per second.
func hammer(b *testing.B, url func(i int) string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			res, err := client.Get(url(i))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkHTTP compares a poll of GET /api/killfeed (10 systems, 300 real
// killmails retained, nothing new for the client) with a trivial Echo
// handler served and loaded the same way in the same run. Allocations count
// the client's too.
func BenchmarkHTTP(b *testing.B) {
	b.Run("trivial-echo", func(b *testing.B) {
		base := serve(b, trivialEcho())
		b.ReportAllocs()
		hammer(b, func(int) string { return base + "/" })
	})
	b.Run("poll", func(b *testing.B) {
		base := serve(b, pollServer(b))
		b.ReportAllocs()
		hammer(b, func(i int) string { return pollURL(base, i) })
	})
}

func pollURL(base string, i int) string {
	return base + "/api/killfeed?client_id=bench" + strconv.Itoa(i%64) + benchSystems
}

// BenchmarkHTTPRatio loads the poll and the trivial handler in turns,
// 32 keep-alive clients for 100ms on one and then on the other (the order
// turned each round), so that both see the same machine within
// milliseconds of each other, and reports their requests per second over
// the rounds and poll/trivial. The trivial handler is loaded twice: with
// the polls' own requests (what differs is what the handler does with
// one), and with GET / (poll/trivial-root: the shorter request costs the
// client and the server less too). Run it with -benchtime Nx: N rounds.
func BenchmarkHTTPRatio(b *testing.B) {
	trivial := serve(b, trivialEcho())
	poll := serve(b, pollServer(b))
	var urls [3][]string // built once
	for i := range 64 {
		urls[0] = append(urls[0], pollURL(trivial, i))
		urls[2] = append(urls[2], pollURL(poll, i))
	}
	urls[1] = []string{trivial + "/"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const clients, phase = 32, 100 * time.Millisecond
	var served [3]int64
	var spent [3]time.Duration
	load := func(k int) {
		var n atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		stop := start.Add(phase)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; time.Now().Before(stop); i += clients {
					res, err := client.Get(urls[k][i%len(urls[k])])
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		served[k] += n.Load()
		spent[k] += time.Since(start)
	}
	for k := range urls { // warm up: connections, the clients' offsets
		load(k)
	}
	served, spent = [3]int64{}, [3]time.Duration{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range urls {
			load((i + k) % len(urls))
		}
	}
	rate := func(k int) float64 { return float64(served[k]) / spent[k].Seconds() }
	b.ReportMetric(rate(0), "trivial-req/s")
	b.ReportMetric(rate(2), "poll-req/s")
	b.ReportMetric(rate(2)/rate(0), "poll/trivial")
	b.ReportMetric(rate(2)/rate(1), "poll/trivial-root")
}
