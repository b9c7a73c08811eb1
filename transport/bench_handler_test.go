package transport_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"
)

// trivialEcho is the reference of the poll benchmarks: an Echo handler that
// answers what a caught-up poll answers, {"events":[]}, with nothing to
// read.
func trivialEcho() http.Handler {
	e := echo.New()
	e.GET("/*", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"events": []any{}}) })
	return e
}

// BenchmarkPollHandler is BenchmarkHTTP's poll without the network: the
// server's own cost (CPU and allocations) of one GET /api/killfeed, which
// a loaded machine's noise does not drown, beside the trivial handler's in
// the same harness (the request and the recorder count in both).
func BenchmarkPollHandler(b *testing.B) {
	b.Run("trivial-echo", func(b *testing.B) {
		h := trivialEcho()
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.Run("poll", func(b *testing.B) {
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
	})
}
