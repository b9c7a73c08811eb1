package eventlog_test

import (
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// BenchmarkReadPage is the index read of one page of 1,000 events from
// the start of a 30,000-event log, over its 10 busiest systems, as a
// reader catching up makes it: what the store actor does, under the log's
// lock, for each page of InsertDuringCatchUp (actors).
func BenchmarkReadPage(b *testing.B) {
	kms := fixture.Killmails()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = log.Close() }()
	all := make([]killmail.Killmail, 30_000)
	for i := range all {
		all[i] = kms[i%len(kms)]
		all[i].ID = int64(i + 1)
	}
	var nextID int64
	fill(b, log, all, len(all), &nextID)
	sel := selection.Of(busiest(all, 10))
	b.ReportAllocs()
	for b.Loop() {
		page, err := log.Since(sel, 0, 1000)
		if err != nil || len(page.Events) != 1000 {
			b.Fatal(len(page.Events), err)
		}
	}
}
