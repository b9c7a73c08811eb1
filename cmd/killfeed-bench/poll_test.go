package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The load tool's client reads whole answers by their Content-Length, so
// that every request on a connection gets its own answer, and refuses an
// answer that is not a 200.
func TestPoolLoadsAndChecksAnswers(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		asked = append(asked, r.URL.RawQuery) // one connection: no race
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.Repeat(`{"events":[]}`, len(asked)%50)))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	p, err := dialPool(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	n, err := p.load([]string{"/api/killfeed?client_id=a", "/api/killfeed?client_id=b"}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 || int(n) != len(asked) {
		t.Fatalf("%d answers counted for %d requests served", n, len(asked))
	}
	if asked[0] != "client_id=a" || asked[1] != "client_id=b" {
		t.Errorf("requests %q, want the paths in turn", asked[:2])
	}
	if _, err := p.load([]string{"/missing"}, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404: err = %v, want one naming it", err)
	}
}
