package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type delivery struct {
	id uint64
	at int64
}

// runClient is the client process: it reads one line of ids (systems,
// corporations or alliances, as -follow says) per
// connection from in, subscribes them all, prints "ready", records every
// delivery, then reads "window N", "id publish_ns" lines and "end", and
// prints a JSON result.
func runClient(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	target := fs.String("target", "", "websocket URL; several, comma-separated, are dialled in turn (edge nodes)")
	conns := fs.Int("conns", 0, "connections")
	cpuprofile := fs.String("cpuprofile", "", "write the client's CPU profile of the measured window to this file")
	followed := fs.String("follow", string(followSystems), "what each line's ids are: systems, corporations or alliances")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var (
		closed      atomic.Int64
		ready       sync.WaitGroup
		ctx, cancel = context.WithCancel(context.Background())
	)
	defer cancel()
	rd, err := newConnReader(int(raiseNoFile())+1, &closed)
	if err != nil {
		return err
	}
	sem := make(chan struct{}, 64) // dial concurrency
	targets := strings.Split(*target, ",")
	for i := 0; i < *conns && sc.Scan(); i++ {
		line := sc.Text()
		url := targets[i%len(targets)]
		ready.Add(1)
		sem <- struct{}{}
		go func() {
			defer ready.Done()
			var c *rawWS
			var err error
			for try := 0; try < 5; try++ {
				c, err = dialRaw(ctx, url)
				if err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			<-sem
			if err == nil {
				var head [64]byte
				err = c.writeText(subscribeFrame(follow(*followed), line))
				if err == nil {
					_, _, err = c.next(head[:]) // subscribed
				}
				if err == nil {
					err = rd.add(c) // it reads the connection from now on
				} else {
					_ = c.Close()
				}
			}
			if err != nil {
				closed.Add(1)
			}
		}()
	}
	ready.Wait()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "ready")
	cpu0 := cpuTime()
	reads0, _, _ := ioCalls()

	sent := map[uint64]int64{}
	var window int64
	for sc.Scan() {
		line := sc.Text()
		if line == "end" {
			break
		}
		if w, ok := strings.CutPrefix(line, "window "); ok {
			window, _ = strconv.ParseInt(w, 10, 64)
			continue
		}
		a, b, _ := strings.Cut(line, " ")
		id, _ := strconv.ParseUint(a, 10, 64)
		t, _ := strconv.ParseInt(b, 10, 64)
		sent[id] = t
	}
	closedBefore := closed.Load()
	cpu := cpuTime() - cpu0
	reads1, _, _ := ioCalls()
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	cancel()
	all := rd.stop()
	var lat []float64
	for _, d := range all {
		if t, ok := sent[d.id]; ok {
			lat = append(lat, float64(d.at-t)/1e6)
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	r := result{Deliveries: len(all), Matched: len(lat), P50ms: q(0.50), P99ms: q(0.99), Closed: int(closedBefore), Window: float64(window) / 1e9, CPU: cpu.Seconds(), Reads: reads1 - reads0}
	if len(lat) > 0 {
		r.MaxMs = lat[len(lat)-1]
	}
	return json.NewEncoder(out).Encode(r)
}

// eventID reads "event_id":N from a frame without decoding the killmail.
func eventID(b []byte) uint64 {
	i := bytes.Index(b, []byte(`"event_id":`))
	if i < 0 {
		return 0
	}
	b = b[i+len(`"event_id":`):]
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
