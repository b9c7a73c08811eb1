package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/killfeed/killfeed/eventlog"
)

func TestCollectedSplitsDropsByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewStore(reg, nil)
	m.Collected(eventlog.CollectStats{Dropped: 10, DroppedByCaps: 6, DroppedByAge: 2, ExpiredClients: 3}, time.Millisecond, nil)
	want := `
# HELP killfeed_gc_dropped_events_total Events deleted by retention, by reason: read_by_all (every live client read them), caps (max-events, max-bytes), age (max-age).
# TYPE killfeed_gc_dropped_events_total counter
killfeed_gc_dropped_events_total{reason="age"} 2
killfeed_gc_dropped_events_total{reason="caps"} 4
killfeed_gc_dropped_events_total{reason="read_by_all"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "killfeed_gc_dropped_events_total"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(m.clientsExpired); v != 3 {
		t.Errorf("clients expired %v, want 3", v)
	}
}

func TestInsertedBySource(t *testing.T) {
	m := NewStore(nil, nil)
	m.Inserted(SourceR2Z2, []eventlog.AppendResult{{EventID: 1}, {Duplicate: true}, {EventID: 2}})
	m.Inserted("", []eventlog.AppendResult{{EventID: 3}})
	if v := testutil.ToFloat64(m.inserts[sourceIndex(SourceR2Z2)]); v != 2 {
		t.Errorf("r2z2 inserts %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.duplicates[sourceIndex(SourceR2Z2)]); v != 1 {
		t.Errorf("r2z2 duplicates %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.inserts[sourceIndex(SourceOther)]); v != 1 {
		t.Errorf("other inserts %v, want 1", v)
	}
}

func TestNilRegistryCountsNowhere(t *testing.T) {
	var up *Upstream
	up.Requests(UpstreamR2Z2).Add(OutcomeOK) // must not panic
	up.R2Z2Sequence(3)
	NewServing(nil).Route("/x").Observe(200, false, 0.1)
}

// The hot paths must not allocate: an insert's count, a request's
// observation once its series exists, a websocket push.
func TestHotPathsDoNotAllocate(t *testing.T) {
	st := NewStore(prometheus.NewRegistry(), nil)
	res := []eventlog.AppendResult{{EventID: 1}, {Duplicate: true}}
	r := NewServing(prometheus.NewRegistry()).Route("/api/killfeed")
	r.Observe(200, false, 0.001)
	ws := NewServing(nil).WS(ProtocolNative)
	allocs := testing.AllocsPerRun(1000, func() {
		st.Inserted(SourceHTTP, res)
		r.Observe(200, false, 0.001)
		ws.Pushed.Inc()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

func BenchmarkInserted(b *testing.B) {
	st := NewStore(prometheus.NewRegistry(), nil)
	res := []eventlog.AppendResult{{EventID: 1}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.Inserted(SourceHTTP, res)
		}
	})
}

func BenchmarkRouteObserve(b *testing.B) {
	r := NewServing(prometheus.NewRegistry()).Route("/api/killfeed")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(200, false, 0.001)
		}
	})
}
