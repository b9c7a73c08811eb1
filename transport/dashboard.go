package transport

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/universe"
)

// ui holds the dashboard: plain HTML, CSS and JavaScript modules, served as
// they are (no build step).
//
//go:embed ui
var ui embed.FS

// dashboardCSP keeps the page to its own origin: no inline script, no
// third-party host; websockets to the same host count as 'self'.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ingestWindow is the span GET /api/stats reports the ingest rate over.
const ingestWindow = time.Minute

// dashboard serves GET / (the live dashboard), its files under /ui/, and the
// two small JSON documents it reads: /api/universe and /api/stats.
type dashboard struct {
	srv      *Server
	assets   map[string]*asset // by file name under ui/
	universe func() *asset     // built on first use
	rate     ingestRate
	now      func() time.Time
}

// dashboardRoutes registers the dashboard's routes.
func (s *Server) dashboardRoutes() {
	d := &dashboard{srv: s, assets: uiAssets(), now: time.Now}
	u := s.universe
	d.universe = sync.OnceValue(func() *asset {
		return newAsset(universeJSON(u), "application/json", "public, max-age=3600")
	})
	s.echo.GET("/", d.index)
	s.echo.GET("/ui/:name", d.file)
	s.echo.GET("/api/universe", func(c echo.Context) error { return d.universe().serve(c) })
	s.echo.GET("/api/stats", d.stats)
}

// uiAssets are the files of ui/, read and compressed once.
var uiAssets = sync.OnceValue(func() map[string]*asset {
	files, err := fs.ReadDir(ui, "ui")
	if err != nil {
		panic(err) // the directory is embedded; covered by tests
	}
	assets := make(map[string]*asset, len(files))
	for _, f := range files {
		body, err := ui.ReadFile("ui/" + f.Name())
		if err != nil {
			panic(err)
		}
		ctype := mime.TypeByExtension(path.Ext(f.Name()))
		if strings.HasSuffix(f.Name(), ".js") {
			ctype = "text/javascript; charset=utf-8" // not every mime table knows .js
		}
		assets[f.Name()] = newAsset(body, ctype, "no-cache")
	}
	return assets
})

func (d *dashboard) index(c echo.Context) error { return d.assets["index.html"].serve(c) }

func (d *dashboard) file(c echo.Context) error {
	a, ok := d.assets[c.Param("name")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "path: no such dashboard file")
	}
	return a.serve(c)
}

// asset is a file served from memory, gzipped for clients that take it and
// revalidated by its ETag.
type asset struct {
	body, gz     []byte
	etag         string
	ctype, cache string
}

func newAsset(body []byte, ctype, cache string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, etag: `W/"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype, cache: cache}
	if len(body) > 512 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if b.Len() < len(body) {
			a.gz = b.Bytes()
		}
	}
	return a
}

func (a *asset) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", a.cache)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.ctype, "text/html") {
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("Referrer-Policy", "no-referrer")
	}
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
	}
	if etagMatches(c.Request().Header.Get("If-None-Match"), a.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	body := a.body
	if a.gz != nil && acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	return c.Blob(http.StatusOK, a.ctype, body)
}

// etagMatches is If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(coding) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// universeJSON is what the dashboard's search needs of the static data:
//
//	{"regions":[[10000002,"The Forge"],…],
//	 "systems":[[30000142,"Jita",20000020,10000002,0.9459],…]}
//
// a system being [id, name, constellation id, region id, true security],
// ascending by id. The static data has no constellation names.
func universeJSON(u *universe.Universe) []byte {
	systems := u.Systems()
	regions := make(map[int64]string)
	var order []int64
	rows := make([][]any, len(systems))
	for i, s := range systems {
		if _, ok := regions[s.RegionID]; !ok {
			regions[s.RegionID] = s.RegionName
			order = append(order, s.RegionID)
		}
		rows[i] = []any{s.ID, s.Name, s.ConstellationID, s.RegionID, s.Security}
	}
	regionRows := make([][]any, len(order))
	for i, id := range order {
		regionRows[i] = []any{id, regions[id]}
	}
	b, err := json.Marshal(map[string]any{"regions": regionRows, "systems": rows})
	if err != nil {
		panic(err) // ids, strings and finite numbers always encode
	}
	return b
}

// stats answers GET /api/stats: the store's figures, the open websockets
// and the ingest rate.
func (d *dashboard) stats(c echo.Context) error {
	st := d.srv.svc.Stats()
	now := d.now()
	perMinute, window, ok := d.rate.observe(now, st.Head)
	out := struct {
		Head       uint64   `json:"head"`
		Oldest     uint64   `json:"oldest_event_id"`
		Events     int      `json:"events"`
		Bytes      int64    `json:"bytes"`
		Clients    int      `json:"clients"`
		Websockets int      `json:"websockets"`
		PerMinute  *float64 `json:"ingest_per_minute"`
		Window     float64  `json:"ingest_window_seconds"`
	}{
		Head: st.Head, Oldest: st.Oldest, Events: st.Events, Bytes: st.Bytes, Clients: st.Clients,
		Websockets: d.srv.ws.openConnections(),
	}
	if ok {
		perMinute = math.Round(perMinute*10) / 10
		out.PerMinute, out.Window = &perMinute, math.Round(window.Seconds()*10)/10
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// openConnections is how many websockets (native, Phoenix and zKillboard
// style) are open.
func (h *wsHub) openConnections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// ingestRate turns head samples, taken when GET /api/stats is asked, into
// an ingest rate: event ids only grow and are given one per stored
// killmail, so head deltas count insertions (redeliveries do not move it).
// It keeps one sample a second at most, in a ring that spans a little more
// than ingestWindow when the endpoint is asked at least once a second, and
// at any pace keeps the sample closest to a minute old.
type ingestRate struct {
	mu      sync.Mutex
	samples [64]headSample
	n, next int // samples held; where the next one goes
}

type headSample struct {
	at   time.Time
	head uint64
}

// observe records head at now and returns the insertions per minute since
// the newest sample at least ingestWindow old (the oldest sample when none
// is that old yet) and the span that covers; ok is false before the span
// reaches a second.
func (r *ingestRate) observe(now time.Time, head uint64) (perMinute float64, window time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest, newestOld *headSample // newestOld: the newest sample ingestWindow old
	for i := range r.n {
		s := &r.samples[i]
		if oldest == nil || s.at.Before(oldest.at) {
			oldest = s
		}
		if now.Sub(s.at) >= ingestWindow && (newestOld == nil || s.at.After(newestOld.at)) {
			newestOld = s
		}
	}
	base := oldest
	if newestOld != nil {
		base = newestOld
	}
	var from headSample
	if base != nil {
		from = *base
	}
	newest := r.samples[(r.next+len(r.samples)-1)%len(r.samples)]
	if r.n == 0 || now.Sub(newest.at) >= time.Second {
		r.samples[r.next] = headSample{at: now, head: head}
		r.next = (r.next + 1) % len(r.samples)
		r.n = min(r.n+1, len(r.samples))
	}
	if base == nil {
		return 0, 0, false
	}
	window = now.Sub(from.at)
	if window < time.Second {
		return 0, window, false
	}
	var delta uint64
	if head > from.head {
		delta = head - from.head
	}
	return float64(delta) * float64(time.Minute) / float64(window), window, true
}
