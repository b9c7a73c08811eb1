package transport_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkPollHandler is BenchmarkHTTP's poll without the network: the
// server's own cost (CPU and allocations) of one GET /api/killfeed, which
// a loaded machine's noise does not drown.
func BenchmarkPollHandler(b *testing.B) {
	h := pollServer(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodGet, "/api/killfeed?client_id=bench"+strconv.Itoa(i%64)+benchSystems, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
