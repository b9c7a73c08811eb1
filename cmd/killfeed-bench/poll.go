package main

// killfeed-bench poll: the HTTP load tool of the poll path. It runs the
// killfeed binary (memory storage, limits off) holding -events killmails,
// and beside it a trivial Echo server answering {"events":[]} to any GET,
// each a process of its own; then it loads both with the same requests — a
// caught-up GET /api/killfeed of 10 systems — over -conns keep-alive
// connections, in alternating phases (the order swapped each round), and
// reports requests per second and the CPU each server spent per request.
// The client is a few lines of HTTP/1.1 over raw sockets, so that the
// servers' own work shows, not a client library's.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/killfeed/killfeed/internal/fixture"
)

type pollOptions struct {
	killfeed string
	events   int
	conns    int
	clients  int
	phase    time.Duration
	rounds   int
	// trivialPath, when set, is what the trivial server is asked instead
	// of the polls' own requests.
	trivialPath string
}

func runPoll(args []string) error {
	var o pollOptions
	fs := flag.NewFlagSet("killfeed-bench poll", flag.ContinueOnError)
	fs.StringVar(&o.killfeed, "killfeed", "", "the killfeed binary to load (empty: go build ./cmd/killfeed into a temporary directory; run from the module root)")
	fs.IntVar(&o.events, "events", 100_000, "killmails stored before the load (real killmails of ../shared/data, or the fixture, under new ids)")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections loading each server")
	fs.IntVar(&o.clients, "clients", 64, "client_ids the polls are spread over, each caught up before the load")
	fs.DurationVar(&o.phase, "phase", time.Second, "how long one server is loaded at a time")
	fs.IntVar(&o.rounds, "rounds", 10, "rounds of one phase on each server")
	fs.StringVar(&o.trivialPath, "trivial-path", "", "what the trivial server is asked (empty: the same requests as killfeed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("poll: unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp, err := os.MkdirTemp("", "killfeed-bench-poll-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.killfeed == "" {
		o.killfeed = filepath.Join(tmp, "killfeed")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.killfeed, "./cmd/killfeed")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/killfeed: %w", err)
		}
	}
	kf, err := startServer(ctx, o.killfeed, killfeedListening,
		"--listen", "127.0.0.1:0", "--storage", "memory", "--names=false", "--r2z2=false",
		"--rate-per-ip", "-1", "--longpolls-per-ip", "-1", "--max-clients", "-1")
	if err != nil {
		return fmt.Errorf("start killfeed: %w", err)
	}
	defer kf.stop()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	trivial, err := startServer(ctx, self, trivialListening, "trivial")
	if err != nil {
		return fmt.Errorf("start the trivial server: %w", err)
	}
	defer trivial.stop()

	systems, err := fill(ctx, kf.addr, o.events)
	if err != nil {
		return err
	}
	paths := make([]string, o.clients)
	for i := range paths {
		paths[i] = "/api/killfeed?client_id=bench" + strconv.Itoa(i) + "&systems=" + joinIDs(systems)
		if err := catchUp(ctx, kf.addr, paths[i]); err != nil {
			return err
		}
	}
	fmt.Printf("killfeed pid %d holding %d events; trivial pid %d; %d connections each, %d client_ids, 10 systems; phases of %s\n",
		kf.cmd.Process.Pid, o.events, trivial.cmd.Process.Pid, o.conns, o.clients, o.phase)

	targets := []*server{trivial, kf}
	asked := [][]string{paths, paths}
	if o.trivialPath != "" {
		asked[0] = []string{o.trivialPath}
	}
	for k, t := range targets {
		if t.pool, err = dialPool(t.addr, o.conns); err != nil {
			return err
		}
		defer t.pool.close()
		if _, err := t.pool.load(asked[k], 200*time.Millisecond); err != nil { // warm up
			return err
		}
	}
	var served [2]int64
	var spent [2]time.Duration
	var cpu [2]time.Duration
	var ratios []float64
	for r := range o.rounds {
		var rate [2]float64
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			before := processCPU(targets[k].cmd.Process.Pid)
			start := time.Now()
			n, err := targets[k].pool.load(asked[k], o.phase)
			if err != nil {
				return fmt.Errorf("%s: %w", targets[k].name, err)
			}
			d := time.Since(start)
			cpu[k] += processCPU(targets[k].cmd.Process.Pid) - before
			served[k] += n
			spent[k] += d
			rate[k] = float64(n) / d.Seconds()
		}
		ratios = append(ratios, rate[1]/rate[0])
		fmt.Printf("round %2d: trivial %8.0f req/s   poll %8.0f req/s   poll/trivial %.3f\n", r+1, rate[0], rate[1], rate[1]/rate[0])
	}
	rate := func(k int) float64 { return float64(served[k]) / spent[k].Seconds() }
	perReq := func(k int) float64 { return float64(cpu[k].Microseconds()) / float64(served[k]) }
	slices.Sort(ratios)
	fmt.Printf("trivial %.0f req/s, %.1f µs of server CPU a request; poll %.0f req/s, %.1f µs a request\n", rate(0), perReq(0), rate(1), perReq(1))
	fmt.Printf("poll/trivial %.3f over all rounds (rounds: median %.3f, %.3f–%.3f); server CPU a request trivial/poll %.3f\n",
		rate(1)/rate(0), ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1], perReq(0)/perReq(1))
	return nil
}

// server is a process the bench loads.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string
	pool *pool
}

var (
	killfeedListening = regexp.MustCompile(`msg="killfeed listening" addr=(\S+)`)
	trivialListening  = regexp.MustCompile(`trivial listening on (\S+)`)
)

// startServer runs bin with args and waits for the line of its output
// (standard error or output) that says where it listens.
func startServer(ctx context.Context, bin string, listening *regexp.Regexp, args ...string) (*server, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: filepath.Base(bin), cmd: cmd}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			s.addr = m[1]
			go func() { _, _ = io.Copy(os.Stderr, out) }() // what it says later
			return s, nil
		}
		fmt.Fprintln(os.Stderr, lines.Text())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("%s exited before it listened", bin)
}

func (s *server) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// runTrivial is killfeed-bench trivial: the reference server, an Echo
// handler answering {"events":[]} to any GET, as a caught-up poll answers.
func runTrivial(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("trivial: unexpected argument %q", args[0])
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/*", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"events": []any{}}) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "trivial listening on %s\n", ln.Addr())
	return http.Serve(ln, e)
}

// fill stores n killmails in killfeed at addr, 1,000 a POST, and returns
// the 10 systems with the most of them.
func fill(ctx context.Context, addr string, n int) ([]int64, error) {
	kms := fixture.Killmails()
	if day, err := fixture.ReadJSONL(fixture.SharedData("killmails", "2021-11-27.jsonl.gz"), 0); err == nil {
		kms = day
	}
	count := map[int64]int{}
	id := regexp.MustCompile(`"killmail_id":\s*\d+`)
	const batch = 1000
	for i := 0; i < n; i += batch {
		var body bytes.Buffer
		body.WriteByte('[')
		for j := i; j < min(n, i+batch); j++ {
			km := kms[j%len(kms)]
			count[km.SystemID]++
			if j > i {
				body.WriteByte(',')
			}
			body.Write(id.ReplaceAll(km.JSON, []byte(`"killmail_id":`+strconv.Itoa(j+1))))
		}
		body.WriteByte(']')
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/killmails", &body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		msg, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("POST /api/killmails: %s: %.200s", res.Status, msg)
		}
	}
	systems := make([]int64, 0, len(count))
	for s := range count {
		systems = append(systems, s)
	}
	slices.SortFunc(systems, func(a, b int64) int { return count[b] - count[a] })
	return systems[:min(10, len(systems))], nil
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

// catchUp polls path until it returns nothing more.
func catchUp(ctx context.Context, addr, path string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path+"&limit=10000", nil)
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %.200s", path, res.Status, body)
		}
		if bytes.HasPrefix(body, []byte(`{"events":[],"more":false`)) {
			return nil
		}
	}
}

// pool is a set of keep-alive connections to one server.
type pool struct{ conns []*loadConn }

type loadConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialPool(addr string, n int) (*pool, error) {
	p := &pool{}
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, &loadConn{c: c, br: bufio.NewReaderSize(c, 16<<10)})
	}
	return p, nil
}

func (p *pool) close() {
	for _, c := range p.conns {
		_ = c.c.Close()
	}
}

// load sends GETs of paths on every connection, each waiting for its
// answer before the next, for d, and returns how many were answered.
func (p *pool) load(paths []string, d time.Duration) (int64, error) {
	reqs := make([][]byte, len(paths))
	for i, path := range paths {
		reqs[i] = []byte("GET " + path + " HTTP/1.1\r\nHost: killfeed\r\nAccept-Encoding: gzip\r\n\r\n")
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(p.conns))
	stop := time.Now().Add(d)
	for k, c := range p.conns {
		wg.Go(func() {
			for i := k; time.Now().Before(stop); i += len(p.conns) {
				if _, err := c.c.Write(reqs[i%len(reqs)]); err != nil {
					errs <- err
					return
				}
				if err := c.readAnswer(); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return n.Load(), <-errs
}

// readAnswer reads one response, which must be a 200 with a
// Content-Length.
func (c *loadConn) readAnswer() error {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return errors.New("an answer without Content-Length")
	}
	_, err = c.br.Discard(length)
	return err
}

// processCPU is the user and system CPU time pid has used.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th of the line, in clock ticks (100 a second).
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
