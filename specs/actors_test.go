package specs_test

import (
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/logtest"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/transport"
)

func batchIDs(b eventlog.Batch) []uint64 {
	out := []uint64{}
	for _, e := range b.Events {
		out = append(out, e.ID)
	}
	return out
}

var _ = Describe("the Go API over the actors", func() {
	var svc *actors.Service

	BeforeEach(func() {
		svc = startKillfeed(app.Config{}).Actors()
	})

	insert := func(ctx SpecContext, system int64, from, n int) []uint64 {
		GinkgoHelper()
		var ids []uint64
		for _, km := range logtest.InSystem(system, from, n) {
			res, err := svc.InsertEvent(ctx, system, km.JSON)
			Expect(err).NotTo(HaveOccurred())
			ids = append(ids, res.EventID)
		}
		return ids
	}

	It("runs the original design's four scenarios", func(ctx SpecContext) {
		// 1. three inserts, one fetch returns all three in order
		Expect(insert(ctx, jita, 0, 3)).To(Equal([]uint64{1, 2, 3}))
		b, err := svc.FetchForClient(ctx, "foo", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Expect(batchIDs(b)).To(Equal([]uint64{1, 2, 3}))

		// 2. a second fetch is empty; FetchOneEvent returns only the new one
		b, err = svc.FetchForClient(ctx, "foo", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Events).To(BeEmpty())
		insert(ctx, jita, 3, 1)
		ev, _, ok, err := svc.FetchOneEvent(ctx, "foo", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		Expect(ev.ID).To(Equal(uint64(4)))
		_, _, ok, err = svc.FetchOneEvent(ctx, "foo", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		// 3. two clients, overlapping systems, independent offsets
		insert(ctx, amarr, 4, 2) // 5, 6
		b, _ = svc.FetchForClient(ctx, "bar", selection.Of([]int64{amarr, jita}))
		Expect(batchIDs(b)).To(Equal([]uint64{1, 2, 3, 4, 5, 6}))
		b, _ = svc.FetchForClient(ctx, "foo", selection.Of([]int64{amarr}))
		Expect(batchIDs(b)).To(Equal([]uint64{5, 6}))

		// 4. GC drops what everyone read, keeps the rest
		insert(ctx, jita, 6, 1) // 7
		b, _ = svc.FetchForClient(ctx, "foo", selection.Of([]int64{jita, amarr}))
		Expect(batchIDs(b)).To(Equal([]uint64{7}))
		st, err := svc.CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(6))) // bar is at 6
		b, _ = svc.FetchForClient(ctx, "bar", selection.Of([]int64{jita, amarr}))
		Expect(batchIDs(b)).To(Equal([]uint64{7}))
	}, SpecTimeout(30*time.Second))

	It("delivers published killmails to an in-process subscriber, in order", func(ctx SpecContext) {
		sub, err := svc.Subscribe(ctx, []int64{jita})
		Expect(err).NotTo(HaveOccurred())
		defer sub.Close()
		insert(ctx, amarr, 0, 1)
		insert(ctx, jita, 1, 2)
		var got []uint64
		for range 2 {
			var ev *actors.KillmailInserted
			Eventually(sub.C).WithTimeout(5 * time.Second).Should(Receive(&ev))
			Expect(ev.SystemID).To(Equal(jita))
			got = append(got, ev.EventID)
		}
		Expect(got).To(Equal([]uint64{2, 3}))
		Consistently(sub.C).WithTimeout(100 * time.Millisecond).ShouldNot(Receive())
		sub.Close()
		Eventually(sub.C).WithTimeout(5 * time.Second).Should(BeClosed())
		Expect(sub.Err()).NotTo(HaveOccurred())
	}, SpecTimeout(30*time.Second))

	It("hands a burst that gathered while PubSub was busy to each subscriber at once, in order, each event once", func(ctx SpecContext) {
		// The first notify blocks PubSub's goroutine (a notify must not
		// block; here it stands for PubSub busy with a large fan-out).
		release := make(chan struct{})
		var notified atomic.Int32
		busy, err := svc.SubscribeQueue(ctx, 0, func() {
			if notified.Add(1) == 1 {
				<-release
			}
		}, actors.SystemTopic(jita))
		Expect(err).NotTo(HaveOccurred())
		defer busy.Close()
		// Another subscriber follows jita twice over: its system and all.
		twice, err := svc.SubscribeQueue(ctx, 0, nil, actors.SystemTopic(jita), transport.AllTopic)
		Expect(err).NotTo(HaveOccurred())
		defer twice.Close()

		first := insert(ctx, jita, 0, 1)
		Eventually(notified.Load).WithContext(ctx).Should(Equal(int32(1)))
		rest := insert(ctx, jita, 1, 5) // inserts do not wait for PubSub
		close(release)

		want := append(first, rest...)
		take := func(q *actors.Queue) func() []uint64 {
			var got []uint64
			return func() []uint64 {
				evs, _, _ := q.Take(nil)
				for _, ev := range evs {
					got = append(got, ev.EventID)
				}
				return got
			}
		}
		Eventually(take(busy)).WithContext(ctx).Should(Equal(want))
		Eventually(take(twice)).WithContext(ctx).Should(Equal(want))
		// One hand-over for the first event, one for the five behind it.
		Consistently(notified.Load).WithTimeout(100 * time.Millisecond).Should(Equal(int32(2)))
	}, SpecTimeout(30*time.Second))

	It("tells subscribers when PubSub crashed and restarted empty; new subscriptions work", func(ctx SpecContext) {
		sub, err := svc.Subscribe(ctx, []int64{jita})
		Expect(err).NotTo(HaveOccurred())
		q, err := svc.SubscribeQueue(ctx, 0, nil, actors.SystemTopic(jita))
		Expect(err).NotTo(HaveOccurred())
		svc.System().Root.Send(svc.PubSub(), &actors.Crash{})

		Eventually(sub.C).WithContext(ctx).Should(BeClosed())
		Expect(sub.Err()).To(MatchError(actors.ErrRestarted))
		Eventually(q.Ready()).WithContext(ctx).Should(Receive())
		_, ended, err := q.Take(nil)
		Expect(ended).To(BeTrue())
		Expect(err).To(MatchError(actors.ErrRestarted))
		sub.Close() // after the restart: no double close
		q.Close()

		again, err := svc.Subscribe(ctx, []int64{jita})
		Expect(err).NotTo(HaveOccurred())
		defer again.Close()
		ids := insert(ctx, jita, 0, 2)
		var got []uint64
		for range 2 {
			var ev *actors.KillmailInserted
			Eventually(again.C).WithContext(ctx).Should(Receive(&ev))
			got = append(got, ev.EventID)
		}
		Expect(got).To(Equal(ids))
	}, SpecTimeout(30*time.Second))

	It("drops a subscriber that does not keep up, without slowing inserts", func(ctx SpecContext) {
		sub, err := svc.SubscribeTopics(ctx, 2, actors.SystemTopic(jita))
		Expect(err).NotTo(HaveOccurred())
		insert(ctx, jita, 0, 5)
		Eventually(func() error { return sub.Err() }).WithTimeout(5 * time.Second).Should(MatchError(actors.ErrSlowConsumer))
		n := 0
		for range sub.C {
			n++
		}
		Expect(n).To(Equal(2))
	}, SpecTimeout(30*time.Second))

	It("survives a store actor panic: the caller gets an error, no state is lost", func(ctx SpecContext) {
		insert(ctx, jita, 0, 3)
		b, _ := svc.FetchForClient(ctx, "reader", selection.Of([]int64{jita}))
		Expect(batchIDs(b)).To(Equal([]uint64{1, 2, 3}))
		insert(ctx, jita, 3, 1)

		res, err := svc.System().Root.RequestFuture(svc.Store(), &actors.Crash{}, 5*time.Second).Result()
		Expect(err).NotTo(HaveOccurred(), "the caller is answered, not left to time out")
		crashErr, isErr := res.(error)
		Expect(isErr).To(BeTrue(), "reply %T", res)
		Expect(crashErr).To(MatchError(actors.ErrCrashed))

		// The restarted actor serves the same log: reader's offset survived,
		// event 4 is still unread, ids continue.
		b, err = svc.FetchForClient(ctx, "reader", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Expect(batchIDs(b)).To(Equal([]uint64{4}))
		Expect(insert(ctx, jita, 4, 1)).To(Equal([]uint64{5}))
		sub, err := svc.Subscribe(ctx, []int64{jita})
		Expect(err).NotTo(HaveOccurred())
		defer sub.Close()
		insert(ctx, jita, 5, 1)
		Eventually(sub.C).WithTimeout(5 * time.Second).Should(Receive(HaveField("EventID", uint64(6))))
	}, SpecTimeout(30*time.Second))

	It("collects garbage on the scheduler's interval, with no call from outside", func(ctx SpecContext) {
		ticking := startKillfeed(app.Config{GCInterval: 100 * time.Millisecond}).Actors()
		for _, km := range logtest.InSystem(jita, 0, 3) {
			_, err := ticking.InsertEvent(ctx, jita, km.JSON)
			Expect(err).NotTo(HaveOccurred())
		}
		_, err := ticking.FetchForClient(ctx, "only", selection.Of([]int64{jita}))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int { return ticking.Stats().Events }).WithTimeout(5 * time.Second).Should(BeZero())
		Expect(ticking.Stats().Head).To(Equal(uint64(3)))
	}, SpecTimeout(30*time.Second))
})
