package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// watchPIDs is -watch-pids: name=pid,… of external processes to measure.
var watchPIDs string

// procSample is one process's CPU (clock ticks) and write calls so far.
type procSample struct {
	name          string
	ticks, writes uint64
	ok            bool
}

// watchedNow samples every -watch-pids process from /proc.
func watchedNow() []procSample {
	var out []procSample
	for _, kv := range strings.Split(watchPIDs, ",") {
		name, pid, found := strings.Cut(strings.TrimSpace(kv), "=")
		if !found {
			continue
		}
		s := procSample{name: name}
		if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			// Fields after the command's closing parenthesis; utime and
			// stime are the 14th and 15th of the whole line.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 {
				f := strings.Fields(string(b)[i+1:])
				if len(f) > 13 {
					u, _ := strconv.ParseUint(f[11], 10, 64)
					st, _ := strconv.ParseUint(f[12], 10, 64)
					s.ticks, s.ok = u+st, true
				}
			}
		}
		if b, err := os.ReadFile("/proc/" + pid + "/io"); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "syscw: "); ok {
					s.writes, _ = strconv.ParseUint(v, 10, 64)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// printWatched reports each watched process's CPU and write calls between
// two samples, per killmail published and per delivery.
func printWatched(a, b []procSample, published, deliveries int) {
	for i := range a {
		if i >= len(b) || !a[i].ok || !b[i].ok || published == 0 {
			continue
		}
		cpu := float64(b[i].ticks-a[i].ticks) / 100 // USER_HZ
		writes := b[i].writes - a[i].writes
		perDelivery := 0.0
		if deliveries > 0 {
			perDelivery = cpu * 1e6 / float64(deliveries)
		}
		fmt.Printf("process %s: CPU %.2f s (%.2f ms per killmail, %.1f µs per delivery of the whole run), %d write calls (%.2f per killmail)\n",
			a[i].name, cpu, cpu*1e3/float64(published), perDelivery, writes, float64(writes)/float64(published))
	}
}
