package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
)

// fanOut counts, for every killmail of the day, how many of the first
// conns subscribers (following followed, as spawnClient hands them out)
// it goes to: each subscriber once, however many of its ids it has.
func (d *day) fanOut(f follow, followed [][]int64, conns int) []int {
	subs := map[int64][]int{} // id → subscribers following it
	for i := range conns {
		for _, id := range followed[i%len(followed)] {
			subs[id] = append(subs[id], i)
		}
	}
	out := make([]int, len(d.kms))
	var keys []followKey
	var to []int
	for i, km := range d.kms {
		keys = killmailKeys(keys, km, f != followSystems)
		to = to[:0]
		for _, k := range keys {
			if k.kind == f {
				to = append(to, subs[k.id]...)
			}
		}
		slices.Sort(to)
		out[i] = len(slices.Compact(to))
	}
	return out
}

// due is how many deliveries the first n killmails published make, the
// day's killmails taken in turn (as replay and offer publish them).
func due(fan []int, n int) int {
	total := 0
	for i := range n {
		total += fan[i%len(fan)]
	}
	return total
}

// spread is a median with its range.
type spread struct{ min, median, max float64 }

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return spread{v[0], (v[(len(v)-1)/2] + v[len(v)/2]) / 2, v[len(v)-1]}
}

func (s spread) String() string {
	return fmt.Sprintf("median %.2f (%.2f–%.2f)", s.median, s.min, s.max)
}

// figure is the fan-out figure of one follow over the rounds, from runs of
// killfeed (a) and a reference (b) in the same rounds: delivered events/s
// killfeed ÷ reference, and p99 latency reference ÷ killfeed (both above 1
// when killfeed does better).
func figure(a, b []result) (rates, p99s []float64) {
	for i := range min(len(a), len(b)) {
		if b[i].Matched > 0 && a[i].Window > 0 && b[i].Window > 0 {
			rates = append(rates, (float64(a[i].Matched)/a[i].Window)/(float64(b[i].Matched)/b[i].Window))
		}
		if a[i].P99ms > 0 {
			p99s = append(p99s, b[i].P99ms/a[i].P99ms)
		}
	}
	return rates, p99s
}

// printFigures prints one line per follow: the fan-out figure of kind
// against ref over the rounds, and the worse of its two ratios.
func printFigures(label, kind, ref string, follows []follow, runs func(kind string, f follow) []result) {
	for _, f := range follows {
		rates, p99s := figure(runs(kind, f), runs(ref, f))
		r, p := spreadOf(rates), spreadOf(p99s)
		fmt.Printf("figure%s, following %s over %d rounds: delivered events/s %s ÷ %s %s; p99 %s ÷ %s %s; the worse median %.2f\n",
			label, f, len(p99s), kind, ref, r, ref, kind, p, min(r.median, p.median))
	}
}

// stepKey names the step runs of one offered rate, kind and follow.
type stepKey struct {
	rate   int
	kind   string
	follow follow
}

// stepsVs runs the max-rate phase against a reference: at each offered
// rate, -rounds times, each follow on killfeed and then on the reference,
// each on fresh servers and clients. A rate is sustained by a kind when it
// delivered every due delivery, closed no connection and kept p99 within
// the SLO; the figures are given for every rate, with whether the
// reference sustained it in every round.
func stepsVs(o options, d *day, followed map[follow][][]int64, logger *slog.Logger) error {
	kinds := []string{"killfeed", o.vs}
	fmt.Printf("max rate against %s: %d subscribers, %s per step, %d rounds, SLO p99 ≤ %s\n", o.vs, o.stepConns, o.stepDur, o.rounds, o.slo)
	fans := map[follow][]int{}
	for _, f := range o.follow {
		fans[f] = d.fanOut(f, followed[f], o.stepConns)
	}
	runs := map[stepKey][]result{}
	sustained := map[stepKey]bool{}
	for _, rate := range o.steps {
		for round := range o.rounds {
			for _, f := range o.follow {
				for _, kind := range kinds {
					profile := ""
					if round == 0 && kind == "killfeed" && f == o.follow[0] && rate == o.steps[0] {
						profile = o.stepCPUProfile
					}
					res, ok, err := step(kind, f, rate, o, d, followed[f], fans[f], logger, profile)
					if err != nil {
						return err
					}
					k := stepKey{rate, kind, f}
					if round == 0 {
						sustained[k] = true
					}
					sustained[k] = sustained[k] && ok
					runs[k] = append(runs[k], res)
					fmt.Printf("  round %d, %-8s following %-12s offered %5d km/s: published %5.0f/s, delivered %8.0f events/s (%.4f of due), p50 %6.2f ms, p99 %7.2f ms, closed %d, server CPU %.1f s, client %.1f s%s\n",
						round+1, kind, f, rate, float64(res.published)/res.Window, float64(res.Matched)/res.Window, float64(res.Matched)/float64(max(1, res.Deliveries)),
						res.P50ms, res.P99ms, res.Closed, res.serverCPU.Seconds(), res.CPU, map[bool]string{true: "", false: "  (not sustained)"}[ok])
				}
			}
		}
	}
	for _, rate := range o.steps {
		var held []string
		for _, kind := range kinds {
			var fs []string
			for _, f := range o.follow {
				if sustained[stepKey{rate, kind, f}] {
					fs = append(fs, string(f))
				}
			}
			held = append(held, fmt.Sprintf("%s sustained %s", kind, cmp.Or(strings.Join(fs, ", "), "none")))
		}
		fmt.Printf("offered %d km/s: %s\n", rate, strings.Join(held, "; "))
		printFigures(fmt.Sprintf(" at %d km/s", rate), kinds[0], kinds[1], o.follow, func(kind string, f follow) []result {
			return runs[stepKey{rate, kind, f}]
		})
	}
	return nil
}

// step offers rate killmails/s to a fresh target of kind with -step-conns
// subscribers following f; ok says whether it kept up: it took the offered
// killmails as fast as they came (the floor and the bare fan-out fan out
// within their insert), delivered every due delivery, closed none and kept
// p99 within the SLO. The result's Deliveries is replaced by the due
// count.
func step(kind string, f follow, rate int, o options, d *day, followed [][]int64, fan []int, logger *slog.Logger, cpuprofile string) (result, bool, error) {
	t, err := startKind(kind, o.url, logger)
	if err != nil {
		return result{}, false, err
	}
	defer t.stop()
	c, err := spawnClient(t.wsURL, o.stepConns, f, followed, "")
	if err != nil {
		return result{}, false, err
	}
	if cpuprofile != "" {
		pf, err := os.Create(cpuprofile)
		if err != nil {
			return result{}, false, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return result{}, false, err
		}
	}
	if cpuprofile != "" && o.trace != "" {
		tf, err := os.Create(o.trace)
		if err != nil {
			return result{}, false, err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return result{}, false, err
		}
		defer trace.Stop()
	}
	cpu0 := cpuTime()
	sent, window, err := offer(t, d, rate, o.stepDur)
	serverCPU := cpuTime() - cpu0
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return result{}, false, err
	}
	res, err := c.finish(sent, window)
	if err != nil {
		return result{}, false, err
	}
	res.Window = window.Seconds()
	res.Deliveries = due(fan, len(sent))
	res.published, res.serverCPU = len(sent), serverCPU
	kept := float64(len(sent)) >= 0.99*float64(rate)*window.Seconds()
	ok := kept && res.Matched >= res.Deliveries && res.Closed == 0 && res.P99ms <= float64(o.slo.Milliseconds())
	return res, ok, nil
}
