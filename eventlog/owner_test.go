package eventlog_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/selection"
)

var _ = Describe("client owners and the client cap", func() {
	It("binds a client to the first owner and refuses another, leaving the offsets alone", func() {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		kms := fixture.Killmails()[:3]
		_, err = log.Append(kms, nil)
		Expect(err).NotTo(HaveOccurred())
		systems := []int64{eventlog.AllSystems}

		Expect(log.Claim("bot", "")).To(Succeed(), "an empty owner claims nothing")
		Expect(log.Claim("bot", "alice")).To(Succeed())
		Expect(log.Claim("bot", "alice")).To(Succeed())
		Expect(log.Claim("bot", "mallory")).To(MatchError(eventlog.ErrNotOwner))
		b, err := log.Fetch("bot", selection.Of(systems), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Events).To(HaveLen(3), "a claimed client starts like a new one")

		Expect(log.Fetch("legacy", selection.Of(systems), 1)).Error().NotTo(HaveOccurred())
		Expect(log.Claim("legacy", "bob")).To(Succeed(), "an unbound client goes to its first owner")
		Expect(log.Claim("legacy", "alice")).To(MatchError(eventlog.ErrNotOwner))
		b, err = log.Fetch("legacy", selection.Of(systems), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Events).To(HaveLen(2), "the refused claim did not move the offsets")
	})

	It("starts a claimed RedisQ-style client at the head on Join", func() {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		_, err = log.Append(fixture.Killmails()[:3], nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(log.Claim("q", "alice")).To(Succeed())
		Expect(log.Join("q", []int64{eventlog.AllSystems})).To(Succeed())
		b, err := log.Fetch("q", selection.Of([]int64{eventlog.AllSystems}), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Events).To(BeEmpty())
	})

	It("refuses a new client past MaxClients on every entry point and keeps serving the others", func() {
		log, err := eventlog.Open(eventlog.Config{MaxClients: 2}, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		all := []int64{eventlog.AllSystems}
		Expect(log.Fetch("a", selection.Of(all), 0)).Error().NotTo(HaveOccurred())
		Expect(log.Peek("b", selection.Of(all), 0)).Error().NotTo(HaveOccurred())
		Expect(log.Fetch("c", selection.Of(all), 0)).Error().To(MatchError(eventlog.ErrTooManyClients))
		Expect(log.Peek("c", selection.Of(all), 0)).Error().To(MatchError(eventlog.ErrTooManyClients))
		Expect(log.Join("c", all)).To(MatchError(eventlog.ErrTooManyClients))
		Expect(log.Advance("c", all, 1)).To(MatchError(eventlog.ErrTooManyClients))
		Expect(log.Claim("c", "x")).To(MatchError(eventlog.ErrTooManyClients))
		Expect(log.Fetch("a", selection.Of(all), 0)).Error().NotTo(HaveOccurred())
		Expect(log.Join("b", all)).To(Succeed())
		Expect(log.Stats().Clients).To(Equal(2))
	})
})
