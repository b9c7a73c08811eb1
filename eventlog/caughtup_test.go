package eventlog_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/logtest"
	"github.com/killfeed/killfeed/selection"
)

var _ = Describe("CaughtUp", func() {
	const a, b, quiet = int64(30000142), int64(30002187), int64(30045328)

	// MaxEvents is small so that systems empty out under readers that
	// missed their events.
	open := func(clock *logtest.Clock, maxEvents int) *eventlog.Log {
		GinkgoHelper()
		log, err := eventlog.Open(eventlog.Config{Now: clock.Now, MaxEvents: maxEvents}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		return log
	}

	It("answers only a client with nothing to read, and moves its quiet systems to the head as Fetch does", func() {
		log := open(logtest.NewClock(), 0)
		sel := selection.Of([]int64{a, quiet})
		_, err := log.Append(logtest.InSystem(a, 0, 3), nil)
		Expect(err).NotTo(HaveOccurred())

		_, ok := log.CaughtUp("c", "", sel)
		Expect(ok).To(BeFalse(), "an unknown client is the store's to create")
		first, err := log.Fetch("c", sel, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(first.Events).To(HaveLen(3))

		got, ok := log.CaughtUp("c", "", sel)
		Expect(ok).To(BeTrue())
		Expect(got.Events).To(BeEmpty())
		Expect(got.Head).To(Equal(uint64(3)))
		Expect(got.Oldest).To(Equal(uint64(1)))

		_, ok = log.CaughtUp("c", "", selection.Of([]int64{a, b}))
		Expect(ok).To(BeFalse(), "a system the client has no offset in")
		_, ok = log.CaughtUp("c", "someone", sel)
		Expect(ok).To(BeFalse(), "an owner the client is not bound to yet")

		_, err = log.Append(logtest.InSystem(b, 3, 2), nil) // the head moves on elsewhere
		Expect(err).NotTo(HaveOccurred())
		_, ok = log.CaughtUp("c", "", sel)
		Expect(ok).To(BeTrue(), "nothing new in a or quiet")
		Expect(log.Advance("other", []int64{b}, 5)).To(Succeed())
		Expect(log.Advance("other", []int64{a}, 5)).To(Succeed())
		st, err := log.Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(uint64(5)), "c's quiet offset moved to the head: it holds nothing back")

		_, err = log.Append(logtest.InSystem(a, 5, 1), nil)
		Expect(err).NotTo(HaveOccurred())
		_, ok = log.CaughtUp("c", "", sel)
		Expect(ok).To(BeFalse(), "a new event in a")
	})

	// Twin logs take the same operations, except that where one makes
	// CaughtUp the other makes Fetch: whenever CaughtUp answers, Fetch must
	// have returned the same empty batch, and the two logs must go on
	// reading alike.
	It("is Fetch whenever it answers, over random operations", func() {
		rng := rand.New(rand.NewPCG(26, 1))
		clockQ, clockF := logtest.NewClock(), logtest.NewClock()
		quick, full := open(clockQ, 4), open(clockF, 4)
		systems := []int64{a, b, quiet, eventlog.AllSystems}
		clients := []string{"c1", "c2", "c3"}
		owners := []string{"", "", "k1", "k2"}
		pick := func() selection.Selection {
			n := 1 + rng.IntN(3)
			sel := make([]int64, 0, n)
			for range n {
				sel = append(sel, systems[rng.IntN(len(systems))])
			}
			return selection.Of(sel)
		}
		answered := 0
		for step := range 3000 {
			where := fmt.Sprintf("step %d", step)
			switch op := rng.IntN(10); {
			case op == 0:
				kms := logtest.InSystem(systems[rng.IntN(3)], step, 1+rng.IntN(2))
				for i := range kms {
					kms[i].ID = int64(step*10 + i + 1)
				}
				_, err := quick.Append(kms, nil)
				Expect(err).NotTo(HaveOccurred())
				_, err = full.Append(kms, nil)
				Expect(err).NotTo(HaveOccurred())
			case op == 1:
				clockQ.Advance(time.Minute)
				clockF.Advance(time.Minute)
				sq, err := quick.Collect()
				Expect(err).NotTo(HaveOccurred())
				sf, err := full.Collect()
				Expect(err).NotTo(HaveOccurred())
				Expect(sq).To(Equal(sf), where)
			default:
				id, owner, sel := clients[rng.IntN(len(clients))], owners[rng.IntN(len(owners))], pick()
				if owner != "" {
					eq, ef := quick.Claim(id, owner), full.Claim(id, owner)
					Expect(fmt.Sprint(eq)).To(Equal(fmt.Sprint(ef)), where)
					if eq != nil {
						continue
					}
				}
				limit := rng.IntN(3)
				want, err := full.Fetch(id, sel, limit)
				Expect(err).NotTo(HaveOccurred())
				got, ok := quick.CaughtUp(id, owner, sel)
				if ok {
					answered++
					Expect(want.Events).To(BeEmpty(), where)
					Expect(want.Missed).To(BeFalse(), where)
					Expect(got.Head).To(Equal(want.Head), where)
					Expect(got.Oldest).To(Equal(want.Oldest), where)
					Expect(got.More).To(Equal(want.More), where)
				} else {
					got, err = quick.Fetch(id, sel, limit)
					Expect(err).NotTo(HaveOccurred())
					Expect(eventIDs(got)).To(Equal(eventIDs(want)), where)
				}
			}
			// Both logs read alike for every client, without moving offsets.
			for _, id := range clients {
				for _, s := range systems {
					pq, err := quick.Peek(id, selection.Of([]int64{s}), 0)
					Expect(err).NotTo(HaveOccurred())
					pf, err := full.Peek(id, selection.Of([]int64{s}), 0)
					Expect(err).NotTo(HaveOccurred())
					Expect(eventIDs(pq)).To(Equal(eventIDs(pf)), "%s: %s in %d", where, id, s)
					Expect(pq.Missed).To(Equal(pf.Missed), "%s: %s in %d", where, id, s)
				}
			}
		}
		Expect(answered).To(BeNumerically(">", 300), "the walk reached the caught-up case often")
	})
})

func eventIDs(b eventlog.Batch) []uint64 {
	out := []uint64{}
	for _, e := range b.Events {
		out = append(out, e.ID)
	}
	return out
}
