package pebblestore_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
)

var _ = Describe("client owners", func() {
	It("persist with the client, next to clients saved without one", func() {
		dir := GinkgoT().TempDir()
		store, err := pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).NotTo(HaveOccurred())
		// A client saved without an owner is the format older versions wrote.
		Expect(store.SaveClients([]eventlog.ClientState{
			{ID: "old", LastSeen: 7, Offsets: map[int64]uint64{30000142: 3}},
			{ID: "bound", LastSeen: 8, Offsets: map[int64]uint64{0: 5, 30000144: 2}, Owner: "digest-of-a-key"},
		}, nil)).To(Succeed())
		Expect(store.Close()).To(Succeed())

		store, err = pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).NotTo(HaveOccurred())
		ld, err := store.Load()
		Expect(err).NotTo(HaveOccurred())
		Expect(ld.Clients).To(ConsistOf(
			eventlog.ClientState{ID: "old", LastSeen: 7, Offsets: map[int64]uint64{30000142: 3}},
			eventlog.ClientState{ID: "bound", LastSeen: 8, Offsets: map[int64]uint64{0: 5, 30000144: 2}, Owner: "digest-of-a-key"},
		))

		// Through the Log: the binding survives a reopen.
		log, err := eventlog.Open(eventlog.Config{}, store)
		Expect(err).NotTo(HaveOccurred())
		Expect(log.Claim("bound", "another")).To(MatchError(eventlog.ErrNotOwner))
		Expect(log.Claim("fresh", "k1")).To(Succeed())
		Expect(log.Close()).To(Succeed())
		store, err = pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).NotTo(HaveOccurred())
		log, err = eventlog.Open(eventlog.Config{}, store)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(log.Close)
		Expect(log.Claim("fresh", "k2")).To(MatchError(eventlog.ErrNotOwner))
		Expect(log.Claim("fresh", "k1")).To(Succeed())
		Expect(log.Claim("old", "k2")).To(Succeed())
	})
})
