package main

import (
	"strings"
	"testing"
)

func TestGrowth(t *testing.T) {
	mk := func(heaps ...float64) []soakSample {
		var out []soakSample
		for i, h := range heaps {
			out = append(out, soakSample{heap: h, goroutines: 300, fds: 200 + i%2})
		}
		return out
	}
	for _, c := range []struct {
		heaps []float64
		grew  bool
	}{
		{[]float64{50, 60, 70, 80, 90, 100}, true},       // rising every sample, +25%
		{[]float64{50, 60, 70, 80, 75, 100}, false},      // a dip inside the window
		{[]float64{100, 101, 102, 103, 104, 105}, false}, // rising, but within 10%
		{[]float64{10, 11, 12, 13, 14, 15}, false},       // rising 40%, but under 4 MiB
		{[]float64{10, 20, 30}, false},                   // fewer samples than the window
	} {
		v := growth(mk(c.heaps...), 5)
		if (v != "") != c.grew || (c.grew && !strings.HasPrefix(v, "heap grew")) {
			t.Errorf("%v: verdict %q", c.heaps, v)
		}
	}
	s := mk(1, 2, 3, 4, 5)
	for i := range s {
		s[i].heap, s[i].goroutines = -1, 100+50*i
	}
	if v := growth(s, 5); !strings.HasPrefix(v, "goroutines grew") {
		t.Errorf("goroutines: verdict %q", v)
	}
}
