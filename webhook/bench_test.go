package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/webhook"
)

// BenchmarkDelivery measures killmails delivered per second by one webhook
// to a receiver on loopback that answers at once: for json one signed
// POST and one offset advance per killmail, for discord one POST per ten.
func BenchmarkDelivery(b *testing.B) {
	for _, format := range []string{webhook.FormatJSON, webhook.FormatDiscord} {
		b.Run(format, func(b *testing.B) {
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			log, err := eventlog.Open(eventlog.Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			svc, err := actors.Start(log, false, actors.Config{Topics: func(ev eventlog.Event) []string { return []string{"all"} }})
			if err != nil {
				b.Fatal(err)
			}
			src := webhook.NewLogSource(svc, "all")
			mgr := webhook.NewManager(src, webhook.Config{})
			defer func() { mgr.Close(); src.Close(); svc.Stop(); _ = log.Close() }()
			mgr.Apply([]webhook.Webhook{hook("bench", srv.URL, format, "secret")})
			for mgr.Status()[0].State == webhook.StateStarting {
				time.Sleep(time.Millisecond)
			}
			all := fixture.Killmails()
			kms := make([]killmail.Killmail, b.N)
			for i := range kms {
				kms[i] = all[i%len(all)]
				kms[i].ID = int64(3_000_000_000 + i)
			}
			b.ResetTimer()
			if _, err := svc.Insert(context.Background(), kms, nil); err != nil {
				b.Fatal(err)
			}
			for mgr.Status()[0].Position < uint64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "killmails/s")
			b.ReportMetric(float64(got.Load())/float64(b.N), "requests/killmail")
		})
	}
}
