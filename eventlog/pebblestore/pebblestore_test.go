package pebblestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	fx "github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// clock is a settable time source for eventlog.Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2021, 11, 27, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func systemsOf(kms []killmail.Killmail) []int64 {
	var s []int64
	for _, km := range kms {
		if !slices.Contains(s, km.SystemID) {
			s = append(s, km.SystemID)
		}
	}
	return s
}

// openLog opens a Log over a Store in dir and closes it after the spec
// unless the spec closed it.
func openLog(dir string, cfg eventlog.Config, opts pebblestore.Options) *eventlog.Log {
	GinkgoHelper()
	store, err := pebblestore.Open(dir, opts)
	Expect(err).NotTo(HaveOccurred())
	l, err := eventlog.Open(cfg, store)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = l.Close() })
	return l
}

func mustAppend(l *eventlog.Log, kms []killmail.Killmail, cursor *eventlog.Cursor) []eventlog.AppendResult {
	GinkgoHelper()
	res, err := l.Append(kms, cursor)
	Expect(err).NotTo(HaveOccurred())
	return res
}

func record(id uint64, km killmail.Killmail, t int64) eventlog.Record {
	return eventlog.Record{ID: id, SystemID: km.SystemID, KillmailID: km.ID, Time: t, Body: km.JSON}
}

func ids(recs []eventlog.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

var _ = Describe("Store under a Log", func() {
	var (
		dir string
		kms []killmail.Killmail
		clk *clock
		cfg eventlog.Config
	)
	BeforeEach(func() {
		kms = fx.Killmails()
		dir = filepath.Join(GinkgoT().TempDir(), "data")
		clk = newClock()
		cfg = eventlog.Config{Now: clk.Now}
	})

	It("round-trips events, ids, client offsets and the cursor through close and reopen", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		for i := 0; i < len(kms); i += 50 {
			mustAppend(l, kms[i:i+50], &eventlog.Cursor{Name: "r2z2", Value: uint64(1000 + i)})
		}
		all := systemsOf(kms)
		a, err := l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.ReadBodies()).To(Succeed())
		Expect(a.Events).To(HaveLen(len(kms)))
		b, err := l.Fetch("b", selection.Of(all[:10]), 5)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).To(HaveLen(5))
		before, err := l.Since(selection.Of(all), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(before.ReadBodies()).To(Succeed())
		stats := l.Stats()
		Expect(l.Flush()).To(Succeed())
		Expect(l.Close()).To(Succeed())

		l = openLog(dir, cfg, pebblestore.Options{})
		after, err := l.Since(selection.Of(all), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.ReadBodies()).To(Succeed())
		Expect(after.Events).To(Equal(before.Events))
		Expect(after.Head).To(Equal(before.Head))
		Expect(l.Stats().Events).To(Equal(stats.Events))
		Expect(l.Stats().Clients).To(Equal(2))
		cur, ok := l.Cursor("r2z2")
		Expect(ok).To(BeTrue())
		Expect(cur).To(Equal(uint64(1250)))

		again, err := l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(again.ReadBodies()).To(Succeed())
		Expect(again.Events).To(BeEmpty(), "client a read everything before the restart")
		rest, err := l.Fetch("b", selection.Of(all[:10]), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(rest.ReadBodies()).To(Succeed())
		var want []eventlog.Event
		for _, e := range before.Events {
			if slices.Contains(all[:10], e.SystemID) && e.ID > b.Events[4].ID {
				want = append(want, e)
			}
		}
		Expect(rest.Events).To(Equal(want))

		res := mustAppend(l, append(synthetic(kms, 1, 3), kms[7]), nil)
		Expect(res[0].EventID).To(Equal(before.Head + 1))
		Expect(res[2].EventID).To(Equal(before.Head + 3))
		Expect(res[3]).To(Equal(eventlog.AppendResult{EventID: before.Events[7].ID, Duplicate: true}))
	})

	It("restores the byte count after reopen, so that MaxBytes holds after a restart", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		bytes := l.Stats().Bytes
		Expect(l.Close()).To(Succeed())
		l = openLog(dir, cfg, pebblestore.Options{})
		Expect(l.Stats().Bytes).To(Equal(bytes))
	})

	It("keeps ids and dedupe memory when everything read was collected", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		all := systemsOf(kms)
		read, err := l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(read.ReadBodies()).To(Succeed())
		st, err := l.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(Equal(len(kms)))
		Expect(l.Close()).To(Succeed())

		l = openLog(dir, cfg, pebblestore.Options{})
		Expect(l.Stats().Events).To(BeZero())
		Expect(l.Head()).To(Equal(uint64(len(kms))))
		res := mustAppend(l, kms[:1], nil)
		Expect(res[0]).To(Equal(eventlog.AppendResult{EventID: 1, Duplicate: true}))
		b, err := l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).To(BeEmpty())
		Expect(b.Missed).To(BeFalse())

		clk.Add(eventlog.DefaultMaxAge + time.Hour) // the ids age out of dedupe
		b, err = l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		_, err = l.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(l.Close()).To(Succeed())

		l = openLog(dir, cfg, pebblestore.Options{})
		Expect(l.Head()).To(Equal(uint64(len(kms))))
		res = mustAppend(l, kms[:1], nil)
		Expect(res[0]).To(Equal(eventlog.AppendResult{EventID: uint64(len(kms)) + 1}))
	})

	It("fails an append whose write fails and stores it on retry", func() {
		var fail atomic.Bool
		injected := errors.New("disk on fire")
		opts := pebblestore.Options{BeforeAppend: func() error {
			if fail.Load() {
				return injected
			}
			return nil
		}}
		l := openLog(dir, cfg, opts)
		mustAppend(l, kms[:10], nil)
		fail.Store(true)
		_, err := l.Append(kms[10:20], &eventlog.Cursor{Name: "r2z2", Value: 20})
		Expect(err).To(MatchError(eventlog.ErrWrite))
		Expect(err).To(MatchError(ContainSubstring("disk on fire")))
		Expect(l.Stats().Events).To(Equal(10))
		fail.Store(false)
		res := mustAppend(l, kms[10:20], &eventlog.Cursor{Name: "r2z2", Value: 20})
		Expect(res[0].Duplicate).To(BeFalse())
		Expect(res[0].EventID).To(BeNumerically(">", 10))
		Expect(l.Stats().Events).To(Equal(20))
		Expect(l.Close()).To(Succeed())

		l = openLog(dir, cfg, pebblestore.Options{})
		Expect(l.Stats().Events).To(Equal(20))
		cur, _ := l.Cursor("r2z2")
		Expect(cur).To(Equal(uint64(20)))
	})

	It("reads each event by its id across the ids a failed write left unused", func() {
		var fail atomic.Bool
		l := openLog(dir, cfg, pebblestore.Options{BeforeAppend: func() error {
			if fail.Load() {
				return errors.New("disk on fire")
			}
			return nil
		}})
		mustAppend(l, kms[:10], nil) // 1-10
		fail.Store(true)
		_, err := l.Append(kms[10:12], nil) // 11 and 12, never visible
		Expect(err).To(MatchError(eventlog.ErrWrite))
		fail.Store(false)
		mustAppend(l, kms[12:20], nil) // 13-20
		b, err := l.Since(selection.Of(systemsOf(kms[:20])), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		want := append(slices.Clone(kms[:10]), kms[12:20]...)
		Expect(b.Events).To(HaveLen(len(want)))
		for i, ev := range b.Events {
			Expect(ev.Killmail).To(MatchJSON(want[i].JSON), "event %d", ev.ID)
		}
	})

	It("stores a redelivery whose first write failed, instead of calling it a duplicate", func() {
		entered := make(chan struct{})
		release := make(chan error)
		var calls atomic.Int32
		opts := pebblestore.Options{BeforeAppend: func() error {
			if calls.Add(1) == 1 { // the first write waits, then fails
				close(entered)
				return <-release
			}
			return nil
		}}
		l := openLog(dir, cfg, opts)
		first := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			_, err := l.Append(kms[:1], nil)
			first <- err
		}()
		Eventually(entered).Should(BeClosed())
		second := make(chan []eventlog.AppendResult, 1)
		go func() {
			defer GinkgoRecover()
			res, err := l.Append(kms[:1], nil) // a redelivery while the first write is in flight
			Expect(err).NotTo(HaveOccurred())
			second <- res
		}()
		Consistently(second).WithTimeout(200 * time.Millisecond).ShouldNot(Receive())
		release <- errors.New("disk on fire")
		Eventually(first).Should(Receive(MatchError(eventlog.ErrWrite)))
		var res []eventlog.AppendResult
		Eventually(second).Should(Receive(&res))
		Expect(res[0].Duplicate).To(BeFalse())
		b, err := l.Fetch("reader", selection.Of(systemsOf(kms[:1])), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).To(HaveLen(1))
		Expect(b.Events[0].ID).To(Equal(res[0].EventID))
	})

	It("refuses appends while the disk is nearly full, keeps serving reads, and recovers", func() {
		var free atomic.Uint64
		free.Store(1 << 30)
		opts := pebblestore.Options{MinFreeBytes: 64 << 20, FreeBytes: func(string) (uint64, error) { return free.Load(), nil }}
		l := openLog(dir, cfg, opts)
		mustAppend(l, kms[:10], nil)
		free.Store(10 << 20)
		_, err := l.Append(kms[10:20], nil)
		Expect(err).To(MatchError(eventlog.ErrWrite))
		Expect(err).To(MatchError(ContainSubstring("disk nearly full")))
		b, err := l.Fetch("reader", selection.Of(systemsOf(kms[:10])), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).To(HaveLen(10))
		free.Store(1 << 30)
		res := mustAppend(l, kms[10:20], nil)
		Expect(res[0].Duplicate).To(BeFalse())
		Expect(l.Stats().Events).To(Equal(20))
	})

	It("returns read errors from the disk and serves again once they clear", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		Expect(l.Close()).To(Succeed()) // bodies flushed to sstables

		faults := &faultFS{match: func(op errorfs.Op) bool {
			return isSST(op) && op.Kind.ReadOrWrite() == errorfs.OpIsRead
		}}
		l = openLog(dir, cfg, pebblestore.Options{FS: faults.wrap(vfs.Default)})
		faults.armed.Store(true)
		all := systemsOf(kms)
		b, err := l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.OnDisk()).To(BeTrue())
		Expect(b.ReadBodies()).To(MatchError(ContainSubstring("injected error")))
		faults.armed.Store(false)
		b, err = l.Fetch("a", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).To(HaveLen(len(kms)), "the failed read put the client's offsets back")
		Expect(b.Events[0].Killmail).To(MatchJSON(kms[0].JSON))
	})

	It("leaves bodies on disk to ReadBodies, which reads them even when retention dropped them meanwhile", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		Expect(l.Close()).To(Succeed())
		l = openLog(dir, cfg, pebblestore.Options{}) // every body on disk

		all := systemsOf(kms)
		b, err := l.Fetch("only", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.OnDisk()).To(BeTrue())
		Expect(b.Events).To(HaveLen(len(kms)))
		Expect(b.Events[0].Killmail).To(BeNil(), "read by ReadBodies, not under the log's lock")
		// The only client has read everything: retention drops it all,
		// bodies included, before the reader gets to them.
		st, err := l.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(Equal(len(kms)))
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.OnDisk()).To(BeFalse())
		for i, ev := range b.Events {
			Expect(ev.Killmail).To(MatchJSON(kms[i].JSON), "event %d", ev.ID)
		}
		Expect(b.ReadBodies()).To(Succeed(), "a second call has nothing to do")
	})

	It("reads bodies on disk pausing before each, and keeps the facts it extracts", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		Expect(l.Close()).To(Succeed())
		l = openLog(dir, cfg, pebblestore.Options{}) // every body on disk, facts unknown

		victim := selection.Extract(kms[0].JSON).Victim[selection.Corporation]
		where, err := selection.Terms{Corporations: []int64{victim}}.Compile()
		Expect(err).NotTo(HaveOccurred())
		var want []string
		for _, km := range kms {
			if where.Match(selection.Extract(km.JSON)) {
				want = append(want, string(km.JSON))
			}
		}
		Expect(want).NotTo(BeEmpty())
		sel := selection.Selection{Systems: []int64{eventlog.AllSystems}, Where: where}
		b, err := l.Since(sel, 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Events).To(HaveLen(len(kms)), "facts unknown: every event is a candidate")
		read := func() int {
			n := 0
			for _, ev := range b.Events {
				if ev.Killmail != nil {
					n++
				}
			}
			return n
		}
		var before []int // bodies read at each pause
		Expect(b.ReadBodiesPaced(func() { before = append(before, read()) })).To(Succeed())
		Expect(before).To(HaveLen(len(kms)))
		for i, n := range before {
			Expect(n).To(Equal(i), "bodies read before pause %d", i)
		}
		got := make([]string, len(b.Events))
		for i, ev := range b.Events {
			got[i] = string(ev.Killmail)
		}
		Expect(got).To(Equal(want), "the predicate decided on the extracted facts")

		again, err := l.Since(sel, 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Events).To(HaveLen(len(want)), "the log kept the facts: the index read decides")
		Expect(again.ReadBodiesPaced(nil)).To(Succeed())
		Expect(again.Events).To(HaveLen(len(want)))
	})

	It("extracts the facts of a body read from disk once, however many readers read it at once", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms, nil)
		Expect(l.Close()).To(Succeed())
		l = openLog(dir, cfg, pebblestore.Options{}) // every body on disk, facts unknown

		// Both read the index before either reads a body.
		first, err := l.Since(selection.All(), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		second, err := l.Since(selection.All(), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(first.ReadBodies()).To(Succeed())
		Expect(second.ReadBodies()).To(Succeed())
		Expect(second.Events).To(HaveLen(len(kms)))
		for i, ev := range second.Events {
			Expect(ev.Facts).NotTo(BeNil())
			Expect(ev.Facts).To(BeIdenticalTo(first.Events[i].Facts), "event %d: the first reader's facts", ev.ID)
		}
	})

	It("reads new events from memory, with nothing left to ReadBodies", func() {
		l := openLog(dir, cfg, pebblestore.Options{})
		mustAppend(l, kms[:10], nil)
		b, err := l.Since(selection.Of(systemsOf(kms[:10])), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.OnDisk()).To(BeFalse())
		Expect(b.Events).To(HaveLen(10))
		Expect(b.Events[9].Killmail).To(MatchJSON(kms[9].JSON))
	})

	It("reclaims the disk space of collected events", func() {
		l := openLog(dir, cfg, pebblestore.Options{CompactAfter: 1000})
		for i := range 20 { // 20 × 500 × ~2.3 KB ≈ 23 MB of bodies
			mustAppend(l, synthetic(kms, int64(1+i*500), 500), nil)
		}
		Expect(l.Close()).To(Succeed())
		full := dirSize(dir)
		Expect(full).To(BeNumerically(">", 15<<20))

		l = openLog(dir, cfg, pebblestore.Options{CompactAfter: 1000})
		all := systemsOf(kms)
		Expect(l.Advance("a", all, 9_500)).To(Succeed())
		st, err := l.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(Equal(9_500))
		Eventually(func() int64 { return dirSize(dir) }).
			WithTimeout(30 * time.Second).Should(BeNumerically("<", full/4))
		GinkgoWriter.Println("dir bytes before", full, "after", dirSize(dir))
		Expect(l.Stats().Events).To(Equal(500))
	})
})

var _ = Describe("Store", func() {
	var (
		dir string
		kms []killmail.Killmail
	)
	BeforeEach(func() {
		kms = fx.Killmails()
		dir = filepath.Join(GinkgoT().TempDir(), "data")
	})
	open := func(opts pebblestore.Options) *pebblestore.Store {
		GinkgoHelper()
		s, err := pebblestore.Open(dir, opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = s.Close() })
		return s
	}

	It("drops bodies and forgets index entries by range", func() {
		s := open(pebblestore.Options{})
		var recs []eventlog.Record
		for i := range 10 {
			recs = append(recs, record(uint64(i+1), kms[i], int64(100+i)))
		}
		Expect(s.Append(recs[:5], nil)).To(Succeed())
		Expect(s.Append(recs[5:], nil)).To(Succeed())

		Expect(s.Drop(4)).To(Succeed())
		for id := uint64(1); id <= 4; id++ {
			_, err := body(s, id)
			Expect(err).To(MatchError(pebblestore.ErrNotFound))
		}
		Expect(body(s, 5)).To(Equal(kms[4].JSON))
		ld, err := s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ids(ld.Records)).To(Equal([]uint64{5, 6, 7, 8, 9, 10}))
		Expect(ids(ld.Forgotten)).To(Equal([]uint64{1, 2, 3, 4}))
		want := recs[5]
		want.Body, want.Size = nil, int64(len(recs[5].Body))
		Expect(ld.Records[1]).To(Equal(want))
		Expect(ld.NextID).To(Equal(uint64(11)))

		Expect(s.Forget(2)).To(Succeed())
		ld, err = s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ids(ld.Forgotten)).To(Equal([]uint64{3, 4}))

		Expect(s.Drop(10)).To(Succeed())
		Expect(s.Forget(10)).To(Succeed())
		Expect(s.Close()).To(Succeed())
		s = open(pebblestore.Options{})
		ld, err = s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ld.Records).To(BeEmpty())
		Expect(ld.Forgotten).To(BeEmpty())
		Expect(ld.NextID).To(Equal(uint64(11)), "ids are never handed out twice")
	})

	It("keeps the largest cursor whatever order appends commit in", func() {
		s := open(pebblestore.Options{})
		Expect(s.Append(nil, []eventlog.Cursor{{Name: "r2z2", Value: 7}})).To(Succeed())
		Expect(s.Append(nil, []eventlog.Cursor{{Name: "r2z2", Value: 3}, {Name: "other", Value: 1}})).To(Succeed())
		ld, err := s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ld.Cursors).To(ConsistOf(eventlog.Cursor{Name: "r2z2", Value: 7}, eventlog.Cursor{Name: "other", Value: 1}))
	})

	It("saves and deletes clients, durable after Close", func() {
		s := open(pebblestore.Options{})
		a := eventlog.ClientState{ID: "a", LastSeen: 5, Offsets: map[int64]uint64{30000142: 9, 30002187: 3}}
		b := eventlog.ClientState{ID: "b", LastSeen: -1, Offsets: map[int64]uint64{}}
		Expect(s.SaveClients([]eventlog.ClientState{a, b}, nil)).To(Succeed())
		Expect(s.SaveClients(nil, []string{"b"})).To(Succeed())
		Expect(s.Close()).To(Succeed())
		s = open(pebblestore.Options{})
		ld, err := s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ld.Clients).To(Equal([]eventlog.ClientState{a}))
	})

	It("returns ErrClosed after Close", func() {
		s := open(pebblestore.Options{})
		Expect(s.Close()).To(Succeed())
		Expect(s.Close()).To(MatchError(pebblestore.ErrClosed))
		Expect(s.Append(nil, []eventlog.Cursor{{Name: "x", Value: 1}})).To(MatchError(pebblestore.ErrClosed))
		_, err := body(s, 1)
		Expect(err).To(MatchError(pebblestore.ErrClosed))
		_, err = s.Bodies()
		Expect(err).To(MatchError(pebblestore.ErrClosed))
		_, err = s.Load()
		Expect(err).To(MatchError(pebblestore.ErrClosed))
		Expect(s.Drop(1)).To(MatchError(pebblestore.ErrClosed))
	})

	It("closes with views of the bodies still open, which then fail with ErrClosed", func() {
		s := open(pebblestore.Options{})
		Expect(s.Append([]eventlog.Record{record(1, kms[0], 100)}, nil)).To(Succeed())
		v, err := s.Bodies()
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Body(1)).To(MatchJSON(kms[0].JSON))
		Expect(s.Close()).To(Succeed(), "no snapshot left open")
		_, err = v.Body(1)
		Expect(err).To(MatchError(pebblestore.ErrClosed))
		Expect(v.Close()).To(Succeed(), "the store closed it")
	})

	It("shares syncs between concurrent appends", func() {
		s := open(pebblestore.Options{})
		const writers, each = 16, 20
		done := make(chan error, writers)
		for w := range writers {
			go func() {
				defer GinkgoRecover()
				for i := range each {
					id := uint64(w*each + i + 1)
					if err := s.Append([]eventlog.Record{record(id, kms[id%uint64(len(kms))], 0)}, nil); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range writers {
			Expect(<-done).To(Succeed())
		}
		ld, err := s.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ld.Records).To(HaveLen(writers * each))
	})

	Describe("a bad data dir", func() {
		// populated creates a store in dir holding the fixture and closes it.
		populated := func() {
			GinkgoHelper()
			s := open(pebblestore.Options{})
			var recs []eventlog.Record
			for i, km := range kms {
				recs = append(recs, record(uint64(i+1), km, 0))
			}
			Expect(s.Append(recs, nil)).To(Succeed())
			Expect(s.Close()).To(Succeed())
		}
		expectOpenError := func(substr string) error {
			GinkgoHelper()
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if s != nil {
				_ = s.Close()
			}
			Expect(err).To(HaveOccurred())
			GinkgoWriter.Println(err)
			Expect(err.Error()).To(HavePrefix("open pebble " + dir + ": "))
			Expect(err.Error()).To(ContainSubstring(substr))
			return err
		}
		overwrite := func(pattern string) {
			GinkgoHelper()
			names, err := filepath.Glob(filepath.Join(dir, pattern))
			Expect(err).NotTo(HaveOccurred())
			Expect(names).NotTo(BeEmpty(), pattern)
			for _, n := range names {
				Expect(os.WriteFile(n, []byte("garbage\x00\xff garbage garbage garbage"), 0o644)).To(Succeed())
			}
		}

		It("is locked by another open Store", func() {
			s := open(pebblestore.Options{})
			Expect(expectOpenError("in use")).To(MatchError(pebblestore.ErrLocked))
			Expect(s.Close()).To(Succeed())
			open(pebblestore.Options{}) // free again
		})

		It("is not a directory", func() {
			Expect(os.MkdirAll(filepath.Dir(dir), 0o755)).To(Succeed())
			Expect(os.WriteFile(dir, []byte("not a dir"), 0o644)).To(Succeed())
			expectOpenError("not a directory")
		})

		It("cannot be read", func() {
			populated()
			faults := &faultFS{match: func(op errorfs.Op) bool { return op.Kind == errorfs.OpList }}
			faults.armed.Store(true)
			_, err := pebblestore.Open(dir, pebblestore.Options{FS: faults.wrap(vfs.Default)})
			Expect(err).To(MatchError(ContainSubstring("injected error")))
			Expect(err.Error()).To(HavePrefix("open pebble " + dir + ": "))
		})

		It("has a corrupt MANIFEST", func() {
			populated()
			overwrite("MANIFEST-*")
			expectOpenError("")
		})

		It("has a corrupt OPTIONS file", func() {
			populated()
			overwrite("OPTIONS-*")
			expectOpenError("")
		})

		It("lost its manifest marker", func() {
			populated()
			names, _ := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
			Expect(names).NotTo(BeEmpty())
			for _, n := range names {
				Expect(os.Remove(n)).To(Succeed())
			}
			Expect(expectOpenError("no manifest")).To(MatchError(pebblestore.ErrCorrupt))
		})

		It("has truncated sstables", func() {
			populated()
			overwrite("*.sst")
			Expect(expectOpenError("size mismatch")).NotTo(Succeed())
		})

		It("has sstables with flipped bits: reads fail, never return wrong data", func() {
			populated()
			names, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			Expect(names).NotTo(BeEmpty())
			for _, n := range names {
				f, err := os.OpenFile(n, os.O_RDWR, 0)
				Expect(err).NotTo(HaveOccurred())
				fi, err := f.Stat()
				Expect(err).NotTo(HaveOccurred())
				_, err = f.WriteAt([]byte("\xde\xad\xbe\xef"), fi.Size()/3)
				Expect(err).NotTo(HaveOccurred())
				Expect(f.Close()).To(Succeed())
			}
			store, err := pebblestore.Open(dir, pebblestore.Options{})
			Expect(err).NotTo(HaveOccurred()) // Pebble reads table data lazily
			l, err := eventlog.Open(eventlog.Config{}, store)
			if err != nil {
				GinkgoWriter.Println(err)
				Expect(store.Close()).To(Succeed())
				Expect(err).To(MatchError(ContainSubstring("checksum")))
				return
			}
			defer l.Close()
			b, err := l.Since(selection.Of(systemsOf(kms)), 0, 0)
			if err == nil {
				err = b.ReadBodies()
			}
			GinkgoWriter.Println(err)
			Expect(err).To(MatchError(pebblestore.ErrCorrupt))
			Expect(err).To(MatchError(ContainSubstring("checksum")))
		})

		It("holds a Pebble database this package did not write", func() {
			Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
			db, err := pebble.Open(dir, &pebble.Options{Merger: &pebble.Merger{
				Name:  "killfeed.maxuint64.v1",
				Merge: pebble.DefaultMerger.Merge,
			}})
			Expect(err).NotTo(HaveOccurred())
			Expect(db.Set([]byte("k"), []byte("v"), pebble.Sync)).To(Succeed())
			Expect(db.Close()).To(Succeed())
			Expect(expectOpenError("not a killfeed store")).To(MatchError(pebblestore.ErrCorrupt))
		})

		It("holds files killfeed did not write: refused, and nothing is written beside them", func() {
			Expect(os.MkdirAll(filepath.Join(dir, "lost+found"), 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)).To(Succeed())
			err := expectOpenError(filepath.Join(dir, "notes.txt") + " (use an empty or new directory)")
			Expect(err).To(MatchError(pebblestore.ErrForeign))
			entries, err := os.ReadDir(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(entries).To(HaveLen(2)) // lost+found and notes.txt, nothing more
		})

		It("holds only lost+found, as the root of a fresh filesystem does: opened", func() {
			Expect(os.MkdirAll(filepath.Join(dir, "lost+found"), 0o755)).To(Succeed())
			Expect(open(pebblestore.Options{}).Close()).To(Succeed())
			open(pebblestore.Options{}) // and again, now that it holds a store
		})
	})
})
