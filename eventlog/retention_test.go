package eventlog_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/selection"
)

var _ = Describe("client retention modes and JoinSystems", func() {
	all := []int64{eventlog.AllSystems}

	It("keeps a RetainAlways client past the TTL, and a RetainNothing one too without holding its events", func() {
		now := time.Unix(1_700_000_000, 0)
		log, err := eventlog.Open(eventlog.Config{ClientTTL: time.Hour, Now: func() time.Time { return now }}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		_, err = log.Append(fixture.Killmails()[:4], nil)
		Expect(err).NotTo(HaveOccurred())
		for _, id := range []string{"idle", "kept", "released"} {
			Expect(log.Advance(id, all, 1)).To(Succeed())
		}
		Expect(log.SetRetention("kept", eventlog.RetainAlways)).To(Succeed())
		Expect(log.SetRetention("released", eventlog.RetainNothing)).To(Succeed())

		st, err := log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(1)), "idle and kept hold events 2-4")

		now = now.Add(2 * time.Hour)
		st, err = log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.ExpiredClients).To(Equal(1), "only the RetainIdle client expires")
		Expect(st.Through).To(Equal(uint64(1)), "kept still holds 2-4")
		Expect(log.Stats().Clients).To(Equal(2))

		Expect(log.SetRetention("kept", eventlog.RetainNothing)).To(Succeed())
		st, err = log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(1)), "with no client holding anything, GC drops nothing more")
		Expect(log.Advance("reader", all, 4)).To(Succeed())
		st, err = log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(4)), "the released clients hold nothing back")
		b, err := log.Peek("released", selection.Of(all), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Missed).To(BeTrue(), "a released client is told what it missed")
		Expect(log.Stats().Clients).To(Equal(3))
	})

	It("starts the systems a client has no offset for at the head, and leaves the others", func() {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		kms := fixture.Killmails()[:6]
		a, b := kms[0].SystemID, kms[1].SystemID
		Expect(a).NotTo(Equal(b))
		_, err = log.Append(kms[:2], nil)
		Expect(err).NotTo(HaveOccurred())

		_, ok := log.Position("hook", []int64{a})
		Expect(ok).To(BeFalse())
		pos, err := log.JoinSystems("hook", []int64{a})
		Expect(err).NotTo(HaveOccurred())
		Expect(pos).To(Equal(uint64(2)), "a new client starts at the head")
		_, err = log.Append(kms[2:4], nil)
		Expect(err).NotTo(HaveOccurred())

		pos, err = log.JoinSystems("hook", []int64{a, b})
		Expect(err).NotTo(HaveOccurred())
		Expect(pos).To(Equal(uint64(2)), "system a keeps its offset")
		got, ok := log.Position("hook", []int64{b})
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(uint64(4)), "system b, new to the client, starts at the head")
		batch, err := log.Peek("hook", selection.Of([]int64{a, b}), 0)
		Expect(err).NotTo(HaveOccurred())
		for _, ev := range batch.Events {
			Expect(ev.ID).To(BeNumerically(">", 2))
		}

		_, err = log.JoinSystems("hook", []int64{b})
		Expect(err).NotTo(HaveOccurred())
		Expect(log.Advance("reader", []int64{a, b}, 4)).To(Succeed())
		st, err := log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(4)), "system a, no longer followed, holds nothing back")
	})
})
