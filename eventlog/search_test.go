package eventlog

import (
	"sort"
	"testing"
)

func FuzzSearchAfter(f *testing.F) {
	f.Add(uint16(0), uint64(0), uint8(1))
	f.Add(uint16(100), uint64(57), uint8(3))
	f.Add(uint16(1000), uint64(999), uint8(1))
	f.Fuzz(func(t *testing.T, n uint16, pos uint64, gap uint8) {
		ids := make([]uint64, n)
		for i := range ids {
			ids[i] = uint64(i)*uint64(gap%7+1) + 1
		}
		want := sort.Search(len(ids), func(i int) bool { return ids[i] > pos })
		if got := searchAfter(ids, pos); got != want {
			t.Fatalf("searchAfter(n=%d, pos=%d) = %d, want %d", n, pos, got, want)
		}
	})
}
