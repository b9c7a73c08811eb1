package transport_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
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

// BenchmarkHTTPRatio loads the poll and the trivial handler at once, each
// client alternating between them, so that both see the same machine at
// the same moment, and reports poll/trivial: the poll's requests per
// second as a fraction of the trivial handler's (the ratio of their mean
// latencies under the shared load).
func BenchmarkHTTPRatio(b *testing.B) {
	trivial := serve(b, trivialEcho()) + "/"
	poll := serve(b, pollServer(b))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	var spent [2]time.Duration
	var count [2]int
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		var mine [2]time.Duration
		var n [2]int
		for i := 0; pb.Next(); i++ {
			k, url := i%2, trivial
			if k == 1 {
				url = pollURL(poll, i/2)
			}
			start := time.Now()
			res, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			mine[k] += time.Since(start)
			n[k]++
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for k := range spent {
			spent[k] += mine[k]
			count[k] += n[k]
		}
	})
	if count[0] > 0 && count[1] > 0 {
		meanTrivial := float64(spent[0]) / float64(count[0])
		meanPoll := float64(spent[1]) / float64(count[1])
		b.ReportMetric(meanTrivial/meanPoll, "poll/trivial")
		b.ReportMetric(meanPoll/1e3, "poll-µs")
		b.ReportMetric(meanTrivial/1e3, "trivial-µs")
	}
}
