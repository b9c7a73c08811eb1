package metrics

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Storage reads Pebble's metrics when Prometheus scrapes.
type Storage struct {
	metrics func() *pebble.Metrics
	// diskFull, when not nil, reports whether the disk guard refuses
	// writes (an error wrapping errFull) or not (nil).
	diskFull func() error
}

// NewStorage registers on reg a collector that calls metrics (Pebble's
// DB.Metrics, nil once closed) and diskFull (the store's free-space guard:
// nil while writes are accepted; may be nil) at scrape time.
func NewStorage(reg *prometheus.Registry, metrics func() *pebble.Metrics, diskFull func() error) {
	register(reg, &Storage{metrics: metrics, diskFull: diskFull})
}

func storageDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_storage_"+name, help, nil, nil)
}

var (
	descDiskUsage      = storageDesc("disk_usage_bytes", "Disk space Pebble uses (live and obsolete tables, WAL, manifest).")
	descWALBytes       = storageDesc("wal_bytes", "Live data in Pebble's write-ahead log.")
	descWALWritten     = storageDesc("wal_written_bytes_total", "Bytes written to Pebble's write-ahead log.")
	descWALSync        = storageDesc("wal_fsync_duration_seconds", "How long Pebble's WAL fsyncs took (one per group of inserts).")
	descDebt           = storageDesc("compaction_debt_bytes", "Pebble's estimate of the bytes to compact before the LSM is stable; a growing debt leads to write stalls.")
	descCompactions    = storageDesc("compactions_total", "Pebble compactions run.")
	descCompacting     = storageDesc("compactions_in_progress", "Pebble compactions running now.")
	descFlushes        = storageDesc("flushes_total", "Pebble memtable flushes.")
	descReadAmp        = storageDesc("read_amplification", "Pebble's read amplification (sublevels of L0 plus non-empty levels).")
	descCacheHits      = storageDesc("block_cache_hits_total", "Pebble block cache hits.")
	descCacheMisses    = storageDesc("block_cache_misses_total", "Pebble block cache misses.")
	descCacheBytes     = storageDesc("block_cache_bytes", "Bytes held in Pebble's block cache.")
	descWritesRefused  = storageDesc("writes_refused", "1 while the disk guard refuses inserts because the data dir's filesystem is nearly full (--min-free-bytes), else 0.")
	storageDescs       = []*prometheus.Desc{descDiskUsage, descWALBytes, descWALWritten, descWALSync, descDebt, descCompactions, descCompacting, descFlushes, descReadAmp, descCacheHits, descCacheMisses, descCacheBytes, descWritesRefused}
	fsyncBucketsWanted = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// Describe implements prometheus.Collector.
func (s *Storage) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storageDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Storage) Collect(ch chan<- prometheus.Metric) {
	if s.diskFull != nil {
		v := 0.0
		if s.diskFull() != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descWritesRefused, prometheus.GaugeValue, v)
	}
	m := s.metrics()
	if m == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descDiskUsage, float64(m.DiskSpaceUsage()))
	gauge(descWALBytes, float64(m.WAL.Size))
	counter(descWALWritten, float64(m.WAL.BytesWritten))
	gauge(descDebt, float64(m.Compact.EstimatedDebt))
	counter(descCompactions, float64(m.Compact.Count))
	gauge(descCompacting, float64(m.Compact.NumInProgress))
	counter(descFlushes, float64(m.Flush.Count))
	gauge(descReadAmp, float64(m.ReadAmp()))
	counter(descCacheHits, float64(m.BlockCache.Hits))
	counter(descCacheMisses, float64(m.BlockCache.Misses))
	gauge(descCacheBytes, float64(m.BlockCache.Size))
	if h, err := fsyncHistogram(m.LogWriter.FsyncLatency); err == nil {
		ch <- h
	}
}

// fsyncHistogram re-exports Pebble's fsync histogram, kept in nanoseconds
// over a hundred buckets, in seconds over the buckets nearest to
// fsyncBucketsWanted (counts are cumulative: keeping a subset of the
// buckets loses resolution, not correctness).
func fsyncHistogram(h prometheus.Histogram) (prometheus.Metric, error) {
	if h == nil {
		return nil, errors.New("no fsync histogram")
	}
	var pb dto.Metric
	if err := h.Write(&pb); err != nil {
		return nil, err
	}
	ph := pb.GetHistogram()
	if ph == nil {
		return nil, errors.New("not a histogram")
	}
	buckets := make(map[float64]uint64, len(fsyncBucketsWanted))
	want := 0
	var prevBound float64
	var prevCount uint64
	for _, b := range ph.GetBucket() {
		bound := b.GetUpperBound() / 1e9
		for want < len(fsyncBucketsWanted) && bound > fsyncBucketsWanted[want] {
			if prevBound > 0 {
				buckets[prevBound] = prevCount
			}
			want++
		}
		prevBound, prevCount = bound, b.GetCumulativeCount()
	}
	return prometheus.NewConstHistogram(descWALSync, ph.GetSampleCount(), ph.GetSampleSum()/1e9, buckets)
}
