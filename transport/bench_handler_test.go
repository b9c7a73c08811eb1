package transport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// BenchmarkPollHandler is BenchmarkHTTP's poll without the network: the
// server's own cost (CPU and allocations) of one GET /api/killfeed, which
// a loaded machine's noise does not drown.
func BenchmarkPollHandler(b *testing.B) {
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
	h := transport.New(svc, transport.Config{}).Handler()
	q := "&systems=30004779,30002874,30000021,32000133,30002813,30000142,30002187,30002659,30045328,30003504"
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodGet, "/api/killfeed?client_id=bench"+strconv.Itoa(i%64)+q, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
