package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/transport"
)

// BenchmarkPollNames polls the 300 fixture killmails, 50 at a time, as new
// clients do (every poll returns events), with the names added (the
// default; every name cached, the renders cached per event) and as stored
// (names=false), in the same run, and reports delivered events/s and the
// bytes of a delivered event.
func BenchmarkPollNames(b *testing.B) {
	esi := fakeesi.New(true)
	defer esi.Close()
	res := names.NewResolver(names.Config{Client: names.NewClient(names.ClientConfig{URL: esi.URL})})
	defer res.Close()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := actors.Start(log, false, actors.Config{BeforeInsert: res.Warm})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Stop(); _ = log.Close() })
	if _, err := svc.Insert(context.Background(), fixture.Killmails(), nil); err != nil {
		b.Fatal(err)
	}
	<-res.Start(fixture.Killmails())
	h := transport.New(svc, transport.Config{Limits: transport.NoLimits(), Names: names.NewRenderer(res, nil, 0)}).Handler()
	base := serve(b, h)
	const limit = 50
	round := 0 // client ids are new in every round of b.N: each poll returns 50 events
	for _, mode := range []string{"names", "stored"} {
		b.Run(mode, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var bytes, events int64
			round++
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := client.Get(base + "/api/killfeed?all=true&limit=" + strconv.Itoa(limit) +
					"&names=" + strconv.FormatBool(mode == "names") + "&client_id=" + mode + strconv.Itoa(round) + "-" + strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				_ = res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
				if i == 0 {
					var p struct{ Events []json.RawMessage }
					_ = json.Unmarshal(body, &p)
					events = int64(len(p.Events))
					bytes = int64(len(body))
					if events != limit {
						b.Fatalf("a poll returned %d events", events)
					}
				}
			}
			b.ReportMetric(float64(b.N*limit)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(bytes)/float64(events), "B/event")
		})
	}
}
