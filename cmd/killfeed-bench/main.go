// Command killfeed-bench load-tests killfeed's websocket push.
//
// It starts killfeed in-process (or targets -url), spawns itself as a
// separate client process holding -conns websocket subscribers (each on
// -per systems drawn by real activity from -day, or with -follow on one
// corporation or alliance of that day's parties), replays that day at
// -speed× for -duration, and reports publish→deliver latency, delivered
// events per second and the server's memory per idle connection. Then it
// offers rising synthetic rates to -step-conns subscribers, on killfeed and
// on a bare coder/websocket fan-out in the same process, to find the
// highest rate delivered before p99 latency passes -slo. The same phases
// run against two references in the same process: a bare coder/websocket
// fan-out (-bare) and the floor (-floor), the least work a websocket
// fan-out can do, which shows what the machine itself allows.
//
//	go run ./cmd/killfeed-bench -conns 10000 -duration 60s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
)

type options struct {
	conns, per, stepConns int
	day                   string
	speed                 float64
	duration, stepDur     time.Duration
	steps                 []int
	slo                   time.Duration
	url                   string
	seed                  uint64
	memprofile            string
	cpuprofile            string
	stepCPUProfile        string
	trace                 string
	clientCPUProfile      string
	bare, floor           bool
	rounds                int
	vs                    string
	follow                []follow
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		if err := runClient(os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "killfeed-bench client:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "poll" || os.Args[1] == "trivial") {
		run := map[string]func([]string) error{"poll": runPoll, "trivial": runTrivial}[os.Args[1]]
		if err := run(os.Args[2:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "killfeed-bench:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "soak" {
		if err := runSoak(os.Args[2:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "killfeed-bench:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var steps string
	flag.IntVar(&o.conns, "conns", 10000, "websocket subscribers of the replay phase")
	flag.IntVar(&o.per, "per", 10, "systems per subscriber, drawn by activity")
	followFlag := flag.String("follow", "systems", "what each subscriber follows: systems (-per of them), corporations or alliances (one, drawn from the day's parties by activity; ids may repeat); several, comma-separated, run one after the other in each round, for ratios from one run")
	flag.StringVar(&o.day, "day", fixture.SharedData("killmails", "2021-11-27.jsonl.gz"), "day of killmails to replay")
	flag.Float64Var(&o.speed, "speed", 100, "replay speed (× real time)")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the replay phase runs")
	flag.StringVar(&steps, "steps", "100,200,400,800,1600", "offered killmails/s of the max-rate phase (empty: skip)")
	flag.IntVar(&o.stepConns, "step-conns", 2000, "subscribers of the max-rate phase")
	flag.DurationVar(&o.stepDur, "step-duration", 5*time.Second, "length of one max-rate step")
	flag.DurationVar(&o.slo, "slo", 50*time.Millisecond, "p99 latency beyond which a rate counts as degraded")
	flag.BoolVar(&o.bare, "bare", false, "run the first phase (memory, replay) against the bare coder/websocket fan-out instead of killfeed")
	flag.BoolVar(&o.floor, "floor", false, "run the first phase (memory, replay) against the floor fan-out instead of killfeed")
	flag.IntVar(&o.rounds, "rounds", 1, "how many times the replay phase runs (with -vs, on both); a noisy machine needs several")
	flag.StringVar(&o.vs, "vs", "", "after each replay, run it again against this reference: floor or bare; the max-rate phase then runs each -steps rate -rounds times, each -follow on killfeed and on the reference, and gives the fan-out figure (delivered events/s killfeed ÷ reference, p99 reference ÷ killfeed) per rate and follow")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the server's CPU profile of the replay phase to this file")
	flag.StringVar(&o.stepCPUProfile, "step-cpuprofile", "", "with -vs: write the server's CPU profile of the first killfeed step (first rate, first -follow) to this file")
	flag.StringVar(&o.trace, "trace", "", "write the server's execution trace of the replay phase to this file (go tool trace)")
	flag.StringVar(&o.clientCPUProfile, "client-cpuprofile", "", "write the client process's CPU profile of the replay phase to this file")
	flag.StringVar(&o.memprofile, "memprofile", "", "write the server's heap profile with the idle connections open to this file")
	flag.StringVar(&o.url, "url", "", "killfeed base URL to load instead of an in-process one (memory figures are then not measured)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the system draw")
	flag.StringVar(&namesMode, "names", "static", "names in the pushed killmails of an in-process killfeed: static (ships, systems: the default without ESI), esi (also characters, corporations and alliances, from an in-process fake ESI that knows every id), off (subscribers ask for the stored form, names=false)")
	flag.StringVar(&ingestURL, "ingest-url", "", "with -url: where killmails are posted (empty: the first -url); -url may list several nodes, comma-separated, e.g. edges of the core at -ingest-url")
	flag.StringVar(&watchPIDs, "watch-pids", "", "name=pid,… of external killfeed processes whose CPU and write calls over the replay are reported (Linux)")
	flag.Parse()
	for _, s := range strings.Split(steps, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			o.steps = append(o.steps, n)
		}
	}
	var err error
	if o.follow, err = parseFollow(*followFlag); err != nil {
		fmt.Fprintln(os.Stderr, "killfeed-bench:", err)
		os.Exit(2)
	}
	if o.rounds < 1 || (o.vs != "" && o.vs != "floor" && o.vs != "bare") {
		fmt.Fprintln(os.Stderr, "killfeed-bench: -rounds must be at least 1, -vs floor or bare")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "killfeed-bench:", err)
		os.Exit(1)
	}
}

// cpuTime is the CPU time (user + system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioCalls counts the read and write system calls this process made so
// far (Linux's /proc/self/io); ok is false elsewhere.
func ioCalls() (reads, writes uint64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, true
}

// raiseNoFile lifts the soft open-files limit to the hard one.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

// day is a day of killmails with their offsets from its start.
type day struct {
	kms     []killmail.Killmail
	at      []time.Duration
	weights map[follow][]weighted // systems, corporations, alliances by activity
}

type weighted struct {
	id  int64
	cum int
}

func loadDay(path string) (*day, error) {
	kms, err := fixture.ReadJSONL(path, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s (see ../shared/data/README.md): %w", path, err)
	}
	d := &day{kms: kms, at: make([]time.Duration, len(kms)), weights: map[follow][]weighted{}}
	var t0 time.Time
	count := map[followKey]int{}
	var keys []followKey
	for i, km := range kms {
		t := killmailTime(km.JSON)
		if i == 0 {
			t0 = t
		}
		d.at[i] = t.Sub(t0)
		keys = killmailKeys(keys, km, true)
		for j, k := range keys {
			if !slices.Contains(keys[:j], k) {
				count[k]++
			}
		}
	}
	ids := make([]followKey, 0, len(count))
	for k := range count {
		ids = append(ids, k)
	}
	sort.Slice(ids, func(i, j int) bool {
		return ids[i].kind < ids[j].kind || ids[i].kind == ids[j].kind && ids[i].id < ids[j].id
	})
	cum := map[follow]int{}
	for _, k := range ids {
		cum[k.kind] += count[k]
		d.weights[k.kind] = append(d.weights[k.kind], weighted{k.id, cum[k.kind]})
	}
	return d, nil
}

func killmailTime(b []byte) time.Time {
	const key = `"killmail_time":"`
	i := strings.Index(string(b), key)
	if i < 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, string(b[i+len(key):i+len(key)+20]))
	return t
}

// printFanout reports how many subscribers each killmail of the replayed
// window goes to, and the most deliveries due within 50 ms of replay time:
// killmails share a killmail_time second, so a fight arrives as a burst,
// and the bursts set the tail latency.
func (d *day) printFanout(f follow, followed [][]int64, speed float64, dur time.Duration) {
	window := time.Duration(float64(dur) * speed)
	span := time.Duration(float64(50*time.Millisecond) * speed)
	subs := map[int64][]int{} // id → subscribers following it
	for i, s := range followed {
		for _, id := range s {
			subs[id] = append(subs[id], i)
		}
	}
	var fan, size []int
	var times []time.Duration
	var keys []followKey
	total := 0
	for i, km := range d.kms {
		if d.at[i] > window {
			break
		}
		keys = killmailKeys(keys, km, f != followSystems)
		var to []int
		for _, k := range keys {
			if k.kind == f {
				to = append(to, subs[k.id]...)
			}
		}
		slices.Sort(to)
		n := len(slices.Compact(to))
		fan = append(fan, n)
		size = append(size, len(km.JSON))
		times = append(times, d.at[i])
		total += n
	}
	if len(fan) == 0 {
		return
	}
	burst, burstBytes, sum, bytes, j := 0, 0, 0, 0, 0
	for i := range fan {
		sum += fan[i]
		bytes += fan[i] * size[i]
		for times[i]-times[j] > span {
			sum -= fan[j]
			bytes -= fan[j] * size[j]
			j++
		}
		if sum > burst {
			burst, burstBytes = sum, bytes
		}
	}
	sorted := slices.Clone(fan)
	slices.Sort(sorted)
	fmt.Printf("fan-out per killmail, following %s: median %d, p99 %d, max %d subscribers; the largest burst: %d deliveries (%.0f%% of the window's %d, %.0f MB of killmails) due within 50 ms\n",
		f, sorted[len(sorted)/2], sorted[len(sorted)*99/100], sorted[len(sorted)-1],
		burst, 100*float64(burst)/float64(total), total, float64(burstBytes)/1e6)
}

// pick draws n distinct ids of f (systems, corporations or alliances),
// each with probability ∝ its activity.
func (d *day) pick(r *rand.Rand, f follow, n int) []int64 {
	w := d.weights[f]
	total := w[len(w)-1].cum
	seen := map[int64]bool{}
	var out []int64
	for len(out) < n && len(seen) < len(w) {
		x := r.IntN(total)
		i := sort.Search(len(w), func(i int) bool { return w[i].cum > x })
		if s := w[i].id; !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// client is a spawned client process.
type client struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// spawnClient starts `killfeed-bench client` with conns subscribers on
// target and waits until they are all subscribed.
func spawnClient(target string, conns int, f follow, followed [][]int64, cpuprofile string) (*client, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "client", "-target", target, "-conns", strconv.Itoa(conns), "-cpuprofile", cpuprofile, "-follow", string(f))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &client{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	c.out.Buffer(make([]byte, 1<<20), 1<<20)
	w := bufio.NewWriter(stdin)
	for i := range conns {
		w.WriteString(idList(followed[i%len(followed)]))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if !c.out.Scan() || c.out.Text() != "ready" {
		return nil, fmt.Errorf("client did not get ready: %q %v", c.out.Text(), c.out.Err())
	}
	return c, nil
}

// result is what a client process reports.
type result struct {
	Deliveries int     `json:"deliveries"`
	Matched    int     `json:"matched"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	Closed     int     `json:"closed"`
	Window     float64 `json:"window_s"`
	CPU        float64 `json:"cpu_s"` // the client's CPU time from ready to end
	Reads      uint64  `json:"reads"` // the client's read system calls from ready to end
	// Set by the max-rate phase: killmails published, and the server's
	// CPU (this process) over the step and its drain.
	published int
	serverCPU time.Duration
}

// finish hands the client the publish times and reads its summary.
func (c *client) finish(sent map[uint64]int64, window time.Duration) (result, error) {
	w := bufio.NewWriter(c.stdin)
	fmt.Fprintf(w, "window %d\n", window.Nanoseconds())
	for id, t := range sent {
		fmt.Fprintf(w, "%d %d\n", id, t)
	}
	w.WriteString("end\n")
	if err := w.Flush(); err != nil {
		return result{}, err
	}
	_ = c.stdin.Close()
	var r result
	if !c.out.Scan() {
		return r, fmt.Errorf("client gave no result: %v", c.out.Err())
	}
	err := jsonUnmarshal(c.out.Bytes(), &r)
	_ = c.cmd.Wait()
	return r, err
}

// writeHeapProfile writes the in-use heap to path, for `go tool pprof`.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func run(o options) error {
	limit := raiseNoFile()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Printf("killfeed-bench: %d CPUs, GOMAXPROCS %d, open-files limit %d, %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), limit, runtime.Version())
	d, err := loadDay(o.day)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(o.seed, 2))
	followed := map[follow][][]int64{}
	fmt.Printf("day %s: %d killmails in %d systems, %d corporations, %d alliances\n",
		o.day, len(d.kms), len(d.weights[followSystems]), len(d.weights[followCorporations]), len(d.weights[followAlliances]))
	for _, f := range o.follow {
		per := 1
		if f == followSystems {
			per = o.per
		}
		ids := make([][]int64, o.conns)
		for i := range ids {
			ids[i] = d.pick(r, f, per)
		}
		followed[f] = ids
		fmt.Printf("%d subscribers × %d %s\n", o.conns, per, f)
		d.printFanout(f, ids, o.speed, o.duration)
	}

	// Phase 1: a real day at speed×, many subscribers; -rounds times, each
	// round following each of -follow in turn, on the first kind, then on
	// the -vs reference.
	kinds := []string{"killfeed"}
	switch {
	case o.floor:
		kinds[0] = "floor"
	case o.bare:
		kinds[0] = "bare"
	}
	if o.vs != "" {
		kinds = append(kinds, o.vs)
	}
	fans := map[follow][]int{}
	for _, f := range o.follow {
		fans[f] = d.fanOut(f, followed[f], o.conns)
	}
	runs := map[runKey][]result{}
	for round := range o.rounds {
		for fi, f := range o.follow {
			for i, kind := range kinds {
				if o.rounds > 1 || len(kinds) > 1 || len(o.follow) > 1 {
					fmt.Printf("round %d of %d, %s following %s:\n", round+1, o.rounds, kind, f)
				}
				res, err := replayPhase(kind, f, o, d, followed[f], fans[f], logger, round == 0 && fi == 0 && i == 0)
				if err != nil {
					return err
				}
				runs[runKey{kind, f}] = append(runs[runKey{kind, f}], res)
			}
		}
	}
	if o.rounds > 1 || len(kinds) > 1 || len(o.follow) > 1 {
		printRounds(kinds, o.follow, runs)
	}
	if len(kinds) > 1 {
		printFigures(" of the replay", kinds[0], kinds[1], o.follow, func(kind string, f follow) []result {
			return runs[runKey{kind, f}]
		})
	}

	// Phase 2: rising offered rates, killfeed vs the references.
	if len(o.steps) == 0 {
		return nil
	}
	if o.vs != "" {
		return stepsVs(o, d, followed, logger)
	}
	f0 := o.follow[0]
	fmt.Printf("max rate: %d subscribers following %s (%d systems each), %s per step, SLO p99 ≤ %s\n", o.stepConns, f0, o.per, o.stepDur, o.slo)
	for _, kind := range []string{"killfeed", "bare", "floor"} {
		best := 0.0
		for _, rate := range o.steps {
			t, err := startKind(kind, o.url, logger)
			if err != nil {
				return err
			}
			c, err := spawnClient(t.wsURL, o.stepConns, f0, followed[f0], "")
			if err != nil {
				t.stop()
				return err
			}
			sent, window, err := offer(t, d, rate, o.stepDur)
			if err != nil {
				t.stop()
				return err
			}
			res, err := c.finish(sent, window)
			t.stop()
			if err != nil {
				return err
			}
			delivered := float64(res.Matched) / window.Seconds()
			ok := res.P99ms <= float64(o.slo.Milliseconds()) && res.Closed == 0
			if ok {
				best = max(best, delivered)
			}
			fmt.Printf("  %-8s offered %5d km/s: published %6.0f/s, delivered %8.0f events/s, p50 %7.2f ms, p99 %8.2f ms, closed %d%s\n",
				kind, rate, float64(len(sent))/window.Seconds(), delivered, res.P50ms, res.P99ms, res.Closed,
				map[bool]string{true: "", false: "  (degraded)"}[ok])
		}
		fmt.Printf("  %-8s max delivered within SLO: %.0f events/s\n", kind, best)
	}
	return nil
}

// startKind starts a target: killfeed (in-process, or url), the floor or
// the bare fan-out.
func startKind(kind, url string, logger *slog.Logger) (*target, error) {
	switch kind {
	case "floor":
		return startFloor()
	case "bare":
		return startBare()
	}
	return startTarget(url, logger)
}

// replayPhase replays the day against a fresh target of kind (killfeed,
// floor or bare) and prints what it measured; profile says whether the
// profiles asked for are taken of this run.
func replayPhase(kind string, f follow, o options, d *day, followed [][]int64, fan []int, logger *slog.Logger, profile bool) (result, error) {
	tgt, err := startKind(kind, o.url, logger)
	if err != nil {
		return result{}, err
	}
	before := heapNow()
	clientProfile := ""
	if profile {
		clientProfile = o.clientCPUProfile
	}
	c, err := spawnClient(tgt.wsURL, o.conns, f, followed, clientProfile)
	if err != nil {
		tgt.stop()
		return result{}, err
	}
	if tgt.local {
		time.Sleep(time.Second)
		after := heapNow()
		fmt.Printf("memory: %.1f KB per idle connection (server heap+stacks, %d connections, %.1f MB)\n",
			float64(after-before)/float64(o.conns)/1024, o.conns, float64(after-before)/(1<<20))
		if profile && o.memprofile != "" {
			if err := writeHeapProfile(o.memprofile); err != nil {
				return result{}, err
			}
		}
	}
	cpuprofile := profile && o.cpuprofile != ""
	if cpuprofile {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
	}
	if profile && o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return result{}, err
		}
	}
	watched0 := watchedNow()
	cpu0, wall0 := cpuTime(), time.Now()
	_, writes0, _ := ioCalls()
	sent, window, err := replay(tgt, d, o.speed, o.duration)
	serverCPU, wall := cpuTime()-cpu0, time.Since(wall0)
	watched1 := watchedNow()
	_, writes1, haveIO := ioCalls()
	if cpuprofile {
		pprof.StopCPUProfile()
	}
	if profile && o.trace != "" {
		trace.Stop()
	}
	if err != nil {
		tgt.stop()
		return result{}, err
	}
	if tgt.local {
		after := heapNow()
		fmt.Printf("memory: %.1f KB per connection after the replay, idle again (%d connections)\n",
			float64(after-before)/float64(o.conns)/1024, o.conns)
	}
	res, err := c.finish(sent, window)
	tgt.stop()
	if err != nil {
		return result{}, err
	}
	res.Window = window.Seconds()
	fmt.Printf("replay at %.0f× for %s: %d killmails published (%.1f/s), %d deliveries of %d due = %.0f events/s delivered; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d connections closed\n",
		o.speed, window.Round(time.Millisecond), len(sent), float64(len(sent))/window.Seconds(),
		res.Matched, due(fan, len(sent)), float64(res.Matched)/window.Seconds(), res.P50ms, res.P99ms, res.MaxMs, res.Closed)
	fmt.Printf("CPU over the replay and its drain (%s): server %.1f s (%.2f cores), client %.1f s\n",
		wall.Round(time.Millisecond), serverCPU.Seconds(), serverCPU.Seconds()/wall.Seconds(), res.CPU)
	printWatched(watched0, watched1, len(sent), res.Matched)
	if haveIO && tgt.local && res.Matched > 0 {
		fmt.Printf("system calls over the replay: server %d writes (%.2f per delivery), client %d reads (%.2f per delivery)\n",
			writes1-writes0, float64(writes1-writes0)/float64(res.Matched), res.Reads, float64(res.Reads)/float64(res.Matched))
	}
	return res, nil
}

// runKey names the replays of one kind following one thing.
type runKey struct {
	kind   string
	follow follow
}

// printRounds sums up the replay's p99 latency over the rounds, per kind
// and follow, then gives round by round the ratios measured in the same
// run: each follow against the first (same kind), and the first kind
// against each reference (same follow).
func printRounds(kinds []string, follows []follow, runs map[runKey][]result) {
	rate := func(r result) float64 { return float64(r.Matched) / r.Window }
	for _, f := range follows {
		for _, kind := range kinds {
			rs := runs[runKey{kind, f}]
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = r.P99ms
			}
			slices.Sort(v)
			median := (v[(len(v)-1)/2] + v[len(v)/2]) / 2
			fmt.Printf("replay p99 over %d rounds, %s following %s: min %.2f ms, median %.2f ms, max %.2f ms\n",
				len(v), kind, f, v[0], median, v[len(v)-1])
		}
	}
	ratios := func(a, b []result) (rates, p99s []string) {
		for i := range a {
			rates = append(rates, fmt.Sprintf("%.2f", rate(a[i])/rate(b[i])))
			p99s = append(p99s, fmt.Sprintf("%.2f", a[i].P99ms/b[i].P99ms))
		}
		return rates, p99s
	}
	for _, kind := range kinds {
		for _, f := range follows[1:] {
			a, b := runs[runKey{kind, f}], runs[runKey{kind, follows[0]}]
			rates, p99s := ratios(a, b)
			fmt.Printf("%s following %s ÷ following %s, round by round: delivered events/s %s; p99 %s\n",
				kind, f, follows[0], strings.Join(rates, ", "), strings.Join(p99s, ", "))
		}
	}
	for _, ref := range kinds[1:] {
		for _, f := range follows {
			a, b := runs[runKey{kinds[0], f}], runs[runKey{ref, f}]
			var diff []string
			for i := range a {
				diff = append(diff, fmt.Sprintf("%+.2f", a[i].P99ms-b[i].P99ms))
			}
			rates, p99s := ratios(a, b)
			fmt.Printf("following %s, %s ÷ %s, round by round: delivered events/s %s; p99 %s (%s minus %s: %s ms)\n",
				f, kinds[0], ref, strings.Join(rates, ", "), strings.Join(p99s, ", "), kinds[0], ref, strings.Join(diff, ", "))
		}
	}
}

// replay inserts the day's killmails at their times ÷ speed, for at most
// dur, and returns each event's publish time.
func replay(t *target, d *day, speed float64, dur time.Duration) (map[uint64]int64, time.Duration, error) {
	sent := make(map[uint64]int64)
	start := time.Now()
	for i, km := range d.kms {
		due := time.Duration(float64(d.at[i]) / speed)
		if due > dur {
			break
		}
		if wait := time.Until(start.Add(due)); wait > 0 {
			time.Sleep(wait)
		}
		// Latency counts from when the killmail was due, not from when the
		// publisher got to it: a target that fans out within its insert
		// (the floor) holds the killmails due after it, and that wait is
		// theirs to count (coordinated omission).
		now := start.Add(due).UnixNano()
		trace.Log(context.Background(), "insert", "") // marks the publish time in a -trace
		id, err := t.insert(km)
		if err != nil {
			return nil, 0, err
		}
		sent[id] = now
	}
	if w := time.Until(start.Add(dur)); w > 0 {
		time.Sleep(w)
	}
	window := time.Since(start)
	time.Sleep(2 * time.Second) // let deliveries drain
	return sent, window, nil
}

// offer inserts rate killmails a second (in 10 ms ticks) for dur, cycling
// through the day with fresh killmail ids.
func offer(t *target, d *day, rate int, dur time.Duration) (map[uint64]int64, time.Duration, error) {
	sent := make(map[uint64]int64)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for time.Since(start) < dur {
		offered := <-tick.C
		due := int(offered.Sub(start).Seconds() * float64(rate))
		for ; n < due; n++ {
			km := d.kms[n%len(d.kms)]
			km.ID = 4_000_000_000 + int64(n)
			// Latency counts from the tick that offered the killmail, not
			// from when the publisher got to it (see replay).
			now := offered.UnixNano()
			trace.Log(context.Background(), "insert", "") // marks the publish time in a trace
			id, err := t.insert(km)
			if err != nil {
				return nil, 0, err
			}
			sent[id] = now
		}
	}
	window := time.Since(start)
	time.Sleep(2 * time.Second)
	return sent, window, nil
}
