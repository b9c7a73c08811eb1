package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/killfeed/killfeed/universe"
)

func dashboardGet(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header
	}
	tr := &http.Transport{DisableCompression: true} // see the encoding as sent
	defer tr.CloseIdleConnections()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// The page and every file it names are served, gzipped on request,
// revalidated by ETag; the page keeps to its own origin.
func TestDashboardFiles(t *testing.T) {
	ts := httptest.NewServer(New(startService(t), Config{}).Handler())
	defer ts.Close()

	res, page := dashboardGet(t, ts.URL+"/", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	files := regexp.MustCompile(`"/ui/([a-z]+\.(?:js|css))"`).FindAllStringSubmatch(string(page), -1)
	if len(files) != 2 {
		t.Fatalf("the page names %v", files)
	}
	for _, f := range append(files, []string{"", "feed.js"}, []string{"", "universe.js"}) {
		u := ts.URL + "/ui/" + f[1]
		res, body := dashboardGet(t, u, nil)
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %d", u, res.StatusCode)
		}
		want := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(u, ".js")]
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("GET %s: Content-Type %q", u, ct)
		}
		res, gz := dashboardGet(t, u, http.Header{"Accept-Encoding": {"br, gzip"}})
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s with gzip: Content-Encoding %q", u, res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, body) {
			t.Errorf("GET %s: gzipped body differs", u)
		}
		if res, _ := dashboardGet(t, u, http.Header{"Accept-Encoding": {"gzip;q=0"}}); res.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s with gzip;q=0: gzipped", u)
		}
		etag := res.Header.Get("ETag")
		if res, body := dashboardGet(t, u, http.Header{"If-None-Match": {`"x", ` + etag}}); res.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("GET %s with If-None-Match: %d, %d bytes", u, res.StatusCode, len(body))
		}
	}
	res, body := dashboardGet(t, ts.URL+"/ui/nope.js", nil)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
		t.Errorf("GET /ui/nope.js: %d %s", res.StatusCode, body)
	}
}

// GET /api/universe carries every system and region of the static data.
func TestDashboardUniverse(t *testing.T) {
	ts := httptest.NewServer(New(startService(t), Config{}).Handler())
	defer ts.Close()
	res, body := dashboardGet(t, ts.URL+"/api/universe", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Cache-Control"), "max-age") || res.Header.Get("ETag") == "" {
		t.Fatalf("GET /api/universe: %d, headers %v", res.StatusCode, res.Header)
	}
	var doc struct {
		Regions [][2]any `json:"regions"`
		Systems [][5]any `json:"systems"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	u := universe.Default()
	if len(doc.Systems) != u.Len() || len(doc.Regions) != u.Regions() {
		t.Fatalf("%d systems, %d regions; want %d, %d", len(doc.Systems), len(doc.Regions), u.Len(), u.Regions())
	}
	jita, _ := u.System(30000142)
	found := false
	for _, s := range doc.Systems {
		if s[0] == float64(jita.ID) {
			found = s[1] == "Jita" && s[2] == float64(jita.ConstellationID) && s[3] == float64(jita.RegionID) && s[4] == jita.Security
		}
	}
	if !found {
		t.Errorf("no row for Jita as %+v", jita)
	}
}

// GET /api/stats reports the store's figures and the open websockets.
func TestDashboardStats(t *testing.T) {
	ts := httptest.NewServer(New(startService(t), Config{}).Handler())
	defer ts.Close()
	stats := func() map[string]any {
		t.Helper()
		res, body := dashboardGet(t, ts.URL+"/api/stats", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/stats: %d %s", res.StatusCode, body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := stats(); m["head"] != 0.0 || m["websockets"] != 0.0 || m["ingest_per_minute"] != nil {
		t.Errorf("empty store: %v", m)
	}
	body := `[{"killmail_id":1,"solar_system_id":30000142},{"killmail_id":2,"solar_system_id":30000142},{"killmail_id":1,"solar_system_id":30000142}]`
	res, err := http.Post(ts.URL+"/api/killmails", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	m := stats()
	if m["head"] != 2.0 || m["events"] != 2.0 || m["oldest_event_id"] != 1.0 || m["websockets"] != 1.0 {
		t.Errorf("two killmails, one socket: %v", m)
	}
}

// The ingest rate is the head's growth since the sample closest to a minute
// old, at whatever pace the endpoint is asked.
func TestIngestRate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var r ingestRate
	if _, _, ok := r.observe(t0, 100); ok {
		t.Fatal("a rate from one sample")
	}
	if _, _, ok := r.observe(t0.Add(500*time.Millisecond), 101); ok {
		t.Fatal("a rate over half a second")
	}
	if got, w, ok := r.observe(t0.Add(30*time.Second), 130); !ok || got != 60 || w != 30*time.Second {
		t.Errorf("after 30 s: %v/min over %v, %v; want 60 over 30s", got, w, ok)
	}
	// Asked twice a second for two minutes, 2 events a second.
	var got float64
	var w time.Duration
	for ms := 30_500; ms <= 150_000; ms += 500 {
		got, w, _ = r.observe(t0.Add(time.Duration(ms)*time.Millisecond), 130+uint64(ms-30_000)/500)
	}
	if got != 120 || w != time.Minute {
		t.Errorf("steady 2/s: %v/min over %v; want 120 over 1m0s", got, w)
	}
	// Then asked every two minutes: over the time since the last answer.
	if got, w, _ := r.observe(t0.Add(270*time.Second), 490); got != 60 || w != 2*time.Minute {
		t.Errorf("two minutes later: %v/min over %v; want 60 over 2m0s", got, w)
	}
}
