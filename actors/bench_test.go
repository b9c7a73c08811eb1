package actors_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
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
