package names_test

import (
	"os"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
)

func readDay(b *testing.B, day string) []killmail.Killmail {
	path := fixture.SharedData("killmails", day+".jsonl.gz")
	if _, err := os.Stat(path); err != nil {
		b.Skipf("real data absent: %v", err)
	}
	kms, err := fixture.ReadJSONL(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	return kms
}

// BenchmarkReplayDay ingests the real days 2021-11-27 and 2021-11-28 one
// killmail at a time, as the R2Z2 poller does, against a fake ESI that
// knows every id, and reports ESI calls per killmail: the first day with
// a cold cache, the second with the first day's names cached, and the
// first day again. It also reports the bytes of a killmail as stored and
// as delivered with every name.
func BenchmarkReplayDay(b *testing.B) {
	day1, day2 := readDay(b, "2021-11-27"), readDay(b, "2021-11-28")
	for i := 0; i < b.N; i++ {
		esi := fakeesi.New(true)
		res := names.NewResolver(names.Config{Client: names.NewClient(names.ClientConfig{URL: esi.URL})})
		replay := func(kms []killmail.Killmail) float64 {
			before := esi.Calls("")
			for _, km := range kms {
				<-res.Start([]killmail.Killmail{km}) // every answer in, as with a healthy ESI
			}
			return float64(esi.Calls("")-before) / float64(len(kms))
		}
		b.ReportMetric(replay(day1), "calls/km-cold")
		b.ReportMetric(replay(day2), "calls/km-next-day")
		b.ReportMetric(replay(day1), "calls/km-again")
		rd := names.NewRenderer(res, nil, 1<<40)
		var stored, delivered int
		for j, km := range day1 {
			stored += len(km.JSON)
			delivered += len(rd.Render(eventlog.Event{ID: uint64(j + 1), Killmail: km.JSON}))
		}
		b.ReportMetric(float64(stored)/float64(len(day1)), "B/stored")
		b.ReportMetric(float64(delivered)/float64(len(day1)), "B/delivered")
		b.ReportMetric(float64(res.Len()), "names")
		res.Close()
		esi.Close()
	}
}

// BenchmarkRender renders the fixture's killmails with every name cached:
// "cold" makes each render (what one delivery of a new event costs), "cached"
// serves the rendered bytes kept per event (every later delivery).
func BenchmarkRender(b *testing.B) {
	esi := fakeesi.New(true)
	defer esi.Close()
	res := names.NewResolver(names.Config{Client: names.NewClient(names.ClientConfig{URL: esi.URL})})
	defer res.Close()
	kms := fixture.Killmails()
	<-res.Start(kms)
	var size int64
	for _, km := range kms {
		size += int64(len(km.JSON))
	}
	b.Run("cold", func(b *testing.B) {
		rd := names.NewRenderer(res, nil, 0)
		b.SetBytes(size / int64(len(kms)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rd.RenderKillmail(kms[i%len(kms)].JSON)
		}
	})
	b.Run("cached", func(b *testing.B) {
		rd := names.NewRenderer(res, nil, 0)
		for j, km := range kms {
			rd.Render(eventlog.Event{ID: uint64(j + 1), Killmail: km.JSON})
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			j := i % len(kms)
			rd.Render(eventlog.Event{ID: uint64(j + 1), Killmail: kms[j].JSON})
		}
	})
}
