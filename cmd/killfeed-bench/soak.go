package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/tidwall/gjson"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/transport"
)

const soakUsage = `usage: killfeed-bench soak [flags]

Replays real killmails at -speed× against a killfeed (started in-process,
or -url on loopback) while clients poll, long-poll, call listen.php and
subscribe over the three websocket protocols, dropping and reconnecting.
Every -interval it prints the server's heap (live, after a GC), goroutines
and open files, and the p99 of poll latency (request to answer), push
latency (POST of a killmail to its websocket frame) and long-poll delivery
latency (POST to the long-poll's answer). It exits 1 when heap,
goroutines or open files grow without bound: rising at every one of the
last -window samples and by more than the tolerance over them (heap: 10%%
and 4 MiB, goroutines: 10%% and 20, open files: 10%% and 10).

`

type soakOptions struct {
	duration, interval time.Duration
	speed              float64
	day, url, storage  string
	pid                int
	pollers, longPolls int
	listeners, ws      int
	window             int
}

// soakRun is the state shared by the soak's clients.
type soakRun struct {
	o       soakOptions
	base    string
	systems []int64
	client  *http.Client
	sent    sync.Map // killmail_id -> time.Time it was posted
	mu      sync.Mutex
	pollLat []time.Duration
	pushLat []time.Duration // websocket pushes
	lpLat   []time.Duration // long-poll deliveries
	polls   atomic.Int64
	pushes  atomic.Int64
	inserts atomic.Int64
	errs    atomic.Int64
	lastErr atomic.Value
	wsOpens atomic.Int64
}

func runSoak(args []string) error {
	var o soakOptions
	fs := flag.NewFlagSet("killfeed-bench soak", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), soakUsage); fs.PrintDefaults() }
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the soak runs")
	fs.DurationVar(&o.interval, "interval", time.Minute, "how often a sample is taken and printed")
	fs.Float64Var(&o.speed, "speed", 60, "replay speed (× real time)")
	fs.StringVar(&o.day, "day", fixture.SharedData("killmails", "2021-11-27.jsonl.gz"), "day of killmails to replay (absent: the 300-killmail fixture)")
	fs.StringVar(&o.url, "url", "", "loopback base URL of a running killfeed (empty: start one in-process); start it with generous --rate-per-ip, --longpolls-per-ip and --ws-per-ip")
	fs.IntVar(&o.pid, "pid", 0, "with -url: the server's process id, whose open files and RSS are sampled")
	fs.StringVar(&o.storage, "storage", app.StorageDisk, "storage of the in-process killfeed (disk: in a temporary directory)")
	fs.IntVar(&o.pollers, "pollers", 20, "clients polling every 500 ms, each changing client_id every 100 polls")
	fs.IntVar(&o.longPolls, "long-polls", 10, "clients long-polling (wait=5)")
	fs.IntVar(&o.listeners, "listeners", 5, "listen.php clients (ttw=5)")
	fs.IntVar(&o.ws, "ws", 60, "websocket clients (native, Phoenix, zKill in turn), each reconnecting after 5-60 s")
	fs.IntVar(&o.window, "window", 5, "samples a growth must span to fail the soak")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.window < 2 || o.interval <= 0 || o.speed <= 0 {
		return errors.New("soak: -window must be at least 2, -interval and -speed positive")
	}
	kms, err := loadSoakDay(o.day)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := &soakRun{o: o, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	seen := map[int64]bool{}
	for _, km := range kms {
		if !seen[km.SystemID] {
			seen[km.SystemID] = true
			r.systems = append(r.systems, km.SystemID)
		}
	}
	var shutdown func()
	if o.url != "" {
		if err := loopbackOnly(o.url); err != nil {
			return err
		}
		r.base = strings.TrimRight(o.url, "/")
	} else {
		a, dir, err := startSoakServer(o.storage)
		if err != nil {
			return err
		}
		r.base = a.URL()
		shutdown = func() {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := a.Shutdown(sctx); err != nil {
				fmt.Fprintln(os.Stderr, "soak: shutdown:", err)
			}
			if dir != "" {
				_ = os.RemoveAll(dir)
			}
		}
	}
	fmt.Printf("soak: %s against %s for %s, %d killmails at %.0f×, %d pollers, %d long-polls, %d listen.php, %d websockets\n",
		map[bool]string{true: "in-process killfeed (" + o.storage + ")", false: "killfeed"}[o.url == ""], r.base, o.duration,
		len(kms), o.speed, o.pollers, o.longPolls, o.listeners, o.ws)

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(n int, fn func(context.Context, int)) {
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); fn(runCtx, i) }()
		}
	}
	spawn(1, func(ctx context.Context, _ int) { r.replay(ctx, kms) })
	spawn(o.pollers, r.poller)
	spawn(o.longPolls, r.longPoller)
	spawn(o.listeners, r.listener)
	spawn(o.ws, r.websocket)

	var samples []soakSample
	tick := time.NewTicker(o.interval)
	start := time.Now()
	fmt.Printf("%8s %9s %10s %6s %10s %10s %10s %8s %8s %8s %6s\n", "t", "heap_MiB", "goroutines", "fds",
		"poll_p99", "push_p99", "lpoll_p99", "polls", "pushes", "inserts", "errors")
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-tick.C:
			s := r.sample(time.Since(start))
			samples = append(samples, s)
			fmt.Println(s)
		}
	}
	tick.Stop()
	wg.Wait()
	r.client.CloseIdleConnections()
	if shutdown != nil {
		shutdown()
	}
	if e, _ := r.lastErr.Load().(string); e != "" {
		fmt.Printf("soak: %d client errors; last: %s\n", r.errs.Load(), e)
	}
	if ctx.Err() != nil {
		return errors.New("soak: interrupted")
	}
	if verdict := growth(samples, o.window); verdict != "" {
		return errors.New("soak: " + verdict)
	}
	fmt.Printf("soak: no unbounded growth over the last %d samples\n", o.window)
	return nil
}

func loadSoakDay(path string) ([]killmail.Killmail, error) {
	if _, err := os.Stat(path); err != nil && path == fixture.SharedData("killmails", "2021-11-27.jsonl.gz") {
		// A worktree under /work/wt: the shared data is two levels up.
		if alt := fixture.Path("..", "..", "shared", "data", "killmails", "2021-11-27.jsonl.gz"); alt != path {
			if _, err := os.Stat(alt); err == nil {
				path = alt
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(os.Stderr, "soak: %s is absent; replaying the 300-killmail fixture\n", path)
		return fixture.Killmails(), nil
	}
	kms, err := fixture.ReadJSONL(path, 0)
	if err != nil {
		return nil, fmt.Errorf("soak: %s: %w", path, err)
	}
	return kms, nil
}

func loopbackOnly(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("soak: -url: %w", err)
	}
	ips, err := net.LookupIP(p.Hostname())
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("soak: -url: %s does not resolve", p.Hostname())
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("soak: -url: %s is not a loopback address; the soak runs on loopback only", p.Hostname())
		}
	}
	return nil
}

// startSoakServer starts killfeed on loopback with a bounded log (so that
// a steady state exists) and clients that expire within minutes (so that
// the pollers' changing client_ids are collected during the soak). The
// per-address limits are raised, not turned off: every client comes from
// 127.0.0.1, and the limiter's own memory is soaked too.
func startSoakServer(storage string) (*app.App, string, error) {
	cfg := app.Config{
		Listen: "127.0.0.1:0", Storage: storage,
		MaxEvents: 5000, GCInterval: 5 * time.Second, ClientTTL: 2 * time.Minute,
		Limits: transport.LimitsConfig{RatePerIP: 5000, RateBurst: 10000, LongPollsPerIP: 1000, WSPerIP: 1000},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	cfg.Ingest.R2Z2Enabled = false
	var dir string
	if storage == app.StorageDisk {
		d, err := os.MkdirTemp("", "killfeed-soak-")
		if err != nil {
			return nil, "", err
		}
		dir, cfg.DataDir = d, d
	}
	a, err := app.Start(cfg)
	if err != nil && dir != "" {
		_ = os.RemoveAll(dir)
	}
	return a, dir, err
}

// replay posts the killmails at their pace, the day over and over with
// new killmail ids.
func (r *soakRun) replay(ctx context.Context, kms []killmail.Killmail) {
	t0 := killmailTime(kms[0].JSON)
	for cycle := int64(0); ; cycle++ {
		start := time.Now()
		for _, km := range kms {
			at := time.Duration(float64(killmailTime(km.JSON).Sub(t0)) / r.o.speed)
			if d := time.Until(start.Add(at)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			if ctx.Err() != nil {
				return
			}
			body, id := km.JSON, km.ID
			if cycle > 0 {
				id = km.ID + cycle*10_000_000_000
				body = bytes.Replace(body, []byte(`"killmail_id":`+strconv.FormatInt(km.ID, 10)),
					[]byte(`"killmail_id":`+strconv.FormatInt(id, 10)), 1)
			}
			r.sent.Store(id, time.Now())
			res, err := r.client.Post(r.base+"/api/killmails", "application/json", bytes.NewReader(body))
			if err != nil {
				r.fail(err)
				continue
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode/100 != 2 {
				r.fail(fmt.Errorf("POST /api/killmails: %s", res.Status))
				continue
			}
			r.inserts.Add(1)
		}
	}
}

func (r *soakRun) fail(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	r.errs.Add(1)
	r.lastErr.Store(err.Error())
}

// pushed records the latency, from its POST, of a killmail delivered over
// a websocket (or, with longPoll, a long-poll).
func (r *soakRun) pushed(frame []byte, path string, longPoll bool) {
	id := gjson.GetBytes(frame, path).Int()
	if id == 0 {
		return
	}
	if v, ok := r.sent.Load(id); ok {
		d := time.Since(v.(time.Time))
		r.mu.Lock()
		if longPoll {
			r.lpLat = append(r.lpLat, d)
		} else {
			r.pushLat = append(r.pushLat, d)
			r.pushes.Add(1)
		}
		r.mu.Unlock()
	}
}

func (r *soakRun) pickSystems(rng *rand.Rand, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(r.systems[rng.IntN(len(r.systems))], 10))
	}
	return sb.String()
}

func (r *soakRun) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode/100 != 2 {
		err = fmt.Errorf("GET %s: %s: %s", req.URL.Path, res.Status, b)
	}
	return b, err
}

// poller polls 30 systems every 500 ms; every 100 polls it takes a new
// client_id (the old one expires on the server).
func (r *soakRun) poller(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 1))
	for gen := 0; ctx.Err() == nil; gen++ {
		u := fmt.Sprintf("%s/api/killfeed?client_id=soak-p%d-%d&systems=%s&limit=100", r.base, i, gen, r.pickSystems(rng, 30))
		for range 100 {
			t := time.Now()
			if _, err := r.get(ctx, u); err != nil {
				r.fail(err)
			} else {
				r.mu.Lock()
				r.pollLat = append(r.pollLat, time.Since(t))
				r.mu.Unlock()
				r.polls.Add(1)
			}
			if !pause.For(ctx, 500*time.Millisecond) {
				return
			}
		}
	}
}

// longPoller long-polls everything (even ones) or 50 systems (odd ones).
func (r *soakRun) longPoller(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 2))
	sel := "all=true"
	if i%2 == 1 {
		sel = "systems=" + r.pickSystems(rng, 50)
	}
	u := fmt.Sprintf("%s/api/killfeed?client_id=soak-l%d&%s&wait=5", r.base, i, sel)
	for ctx.Err() == nil {
		b, err := r.get(ctx, u)
		if err != nil {
			r.fail(err)
			pause.For(ctx, time.Second)
			continue
		}
		gjson.GetBytes(b, "events.#.killmail.killmail_id").ForEach(func(_, v gjson.Result) bool {
			r.pushed([]byte(`{"id":`+v.Raw+`}`), "id", true)
			return true
		})
	}
}

func (r *soakRun) listener(ctx context.Context, i int) {
	u := fmt.Sprintf("%s/listen.php?queueID=soak-%d&ttw=5", r.base, i)
	for ctx.Err() == nil {
		if _, err := r.get(ctx, u); err != nil {
			r.fail(err)
			pause.For(ctx, time.Second)
		}
	}
}

// websocket connects, subscribes and reads for 5-60 s, then drops the
// connection (half the time without a close handshake) and does it again.
func (r *soakRun) websocket(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 3))
	ws := "ws" + strings.TrimPrefix(r.base, "http")
	for ctx.Err() == nil {
		life := time.Duration(5+rng.IntN(56)) * time.Second
		cctx, cancel := context.WithTimeout(ctx, life)
		var path, hello, idPath string
		switch i % 3 {
		case 0:
			path, idPath = "/api/ws", "killmail.killmail_id"
			sel := `"all":true`
			if rng.IntN(2) == 0 {
				sel = `"systems":[` + r.pickSystems(rng, 100) + `]`
			}
			hello = `{"type":"subscribe",` + sel + `}`
		case 1:
			path, idPath = "/socket/websocket?vsn=2.0.0", "4.killmail.killmail_id"
			hello = `["1","1","all","phx_join",{}]`
		default:
			path, idPath = "/websocket/", "killmail_id"
			hello = `{"action":"sub","channel":"killstream"}`
		}
		c, _, err := websocket.Dial(cctx, ws+path, &websocket.DialOptions{HTTPClient: r.client})
		if err != nil {
			cancel()
			r.fail(err)
			pause.For(ctx, time.Second)
			continue
		}
		r.wsOpens.Add(1)
		c.SetReadLimit(1 << 20)
		if err := c.Write(cctx, websocket.MessageText, []byte(hello)); err != nil {
			r.fail(err)
		}
		for {
			_, b, err := c.Read(cctx)
			if err != nil {
				if cctx.Err() == nil {
					r.fail(fmt.Errorf("%s: %w", path, err))
				}
				break
			}
			r.pushed(b, idPath, false)
		}
		cancel()
		if rng.IntN(2) == 0 {
			_ = c.CloseNow()
		} else {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = closeWithin(cctx, c)
			cancel()
		}
	}
}

func closeWithin(ctx context.Context, c *websocket.Conn) error {
	done := make(chan error, 1)
	go func() { done <- c.Close(websocket.StatusNormalClosure, "soak") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return c.CloseNow()
	}
}

// sample takes the figures of one interval and resets its latencies.
func (r *soakRun) sample(at time.Duration) soakSample {
	s := soakSample{at: at, polls: r.polls.Load(), pushes: r.pushes.Load(), inserts: r.inserts.Load(), errs: r.errs.Load()}
	r.mu.Lock()
	s.pollP99, s.pushP99, s.lpP99 = p99(r.pollLat), p99(r.pushLat), p99(r.lpLat)
	r.pollLat, r.pushLat, r.lpLat = r.pollLat[:0], r.pushLat[:0], r.lpLat[:0]
	r.mu.Unlock()
	// Forget the send times of killmails older than a minute of pushes.
	cut := time.Now().Add(-time.Minute)
	r.sent.Range(func(k, v any) bool {
		if v.(time.Time).Before(cut) {
			r.sent.Delete(k)
		}
		return true
	})
	if r.o.url == "" {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.heap = float64(ms.HeapAlloc) / (1 << 20)
		s.goroutines = runtime.NumGoroutine()
		s.fds = countFDs("self")
	} else if r.o.pid > 0 {
		s.heap = rssMiB(r.o.pid)
		s.goroutines = -1
		s.fds = countFDs(strconv.Itoa(r.o.pid))
	} else {
		s.heap, s.goroutines, s.fds = -1, -1, -1
	}
	return s
}

type soakSample struct {
	at                      time.Duration
	heap                    float64 // MiB: live heap in-process, RSS of -pid
	goroutines, fds         int
	pollP99, pushP99, lpP99 time.Duration
	polls, pushes, inserts  int64
	errs                    int64
}

func (s soakSample) String() string {
	return fmt.Sprintf("%8s %9.1f %10d %6d %10s %10s %10s %8d %8d %8d %6d", s.at.Round(time.Second), s.heap, s.goroutines, s.fds,
		s.pollP99.Round(10*time.Microsecond), s.pushP99.Round(10*time.Microsecond), s.lpP99.Round(10*time.Microsecond),
		s.polls, s.pushes, s.inserts, s.errs)
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

func countFDs(pid string) int {
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return -1
}

// growth names the figures that rose at every one of the last window
// samples and, over them, by more than both their relative and absolute
// tolerance; "" when none did. A figure not measured (negative) is skipped.
func growth(samples []soakSample, window int) string {
	if len(samples) < window {
		return ""
	}
	last := samples[len(samples)-window:]
	type figure struct {
		name     string
		of       func(soakSample) float64
		rel, abs float64
	}
	var grew []string
	for _, f := range []figure{
		{"heap", func(s soakSample) float64 { return s.heap }, 0.10, 4},
		{"goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, 0.10, 20},
		{"open files", func(s soakSample) float64 { return float64(s.fds) }, 0.10, 10},
	} {
		first, prev, rising := f.of(last[0]), f.of(last[0]), true
		if first < 0 {
			continue
		}
		for _, s := range last[1:] {
			v := f.of(s)
			if v <= prev {
				rising = false
			}
			prev = v
		}
		if rise := prev - first; rising && rise > f.rel*first && rise > f.abs {
			grew = append(grew, fmt.Sprintf("%s grew at each of the last %d samples, %.1f → %.1f", f.name, window, first, prev))
		}
	}
	return strings.Join(grew, "; ")
}
