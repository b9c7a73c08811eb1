package pebblestore_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/internal/fixture"
)

var _ = Describe("Keyspace", func() {
	It("keeps its keys across a reopen, apart from the events and other keyspaces", func() {
		dir := GinkgoT().TempDir()
		s, err := pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).NotTo(HaveOccurred())
		l, err := eventlog.Open(eventlog.Config{}, s)
		Expect(err).NotTo(HaveOccurred())
		_, err = l.Append(fixture.Killmails()[:3], nil)
		Expect(err).NotTo(HaveOccurred())
		ks := s.Keyspace("names")
		Expect(ks.Set([][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("b"), []byte("2")}})).To(Succeed())
		Expect(s.Keyspace("other").Set([][2][]byte{{[]byte("a"), []byte("x")}})).To(Succeed())
		_, ok, err := ks.Get([]byte("c"))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
		Expect(l.Close()).To(Succeed())

		s, err = pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).NotTo(HaveOccurred())
		l, err = eventlog.Open(eventlog.Config{}, s)
		Expect(err).NotTo(HaveOccurred())
		defer l.Close()
		Expect(l.Stats().Events).To(Equal(3))
		ks = s.Keyspace("names")
		v, ok, err := ks.Get([]byte("b"))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		Expect(string(v)).To(Equal("2"))
		Expect(ks.Len()).To(Equal(2))
		v, _, _ = s.Keyspace("other").Get([]byte("a"))
		Expect(string(v)).To(Equal("x"))
	})
})
