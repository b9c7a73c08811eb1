package ingest_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
)

var _ = Describe("R2Z2 poller with names", func() {
	It("looks up the names of later files while one waits, and stores in sequence order", func(ctx SpecContext) {
		const first, n = 5000, 12
		fake := newFakeR2Z2()
		fake.sequence = first
		lines := fixtureLines()
		var want []int64
		var kms []killmail.Killmail
		for i := range uint64(n) {
			fake.add(first+i, r2z2File(first+i, lines[i]))
			km := parse(lines[i])
			kms = append(kms, km)
			want = append(want, km.ID)
		}
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		esi.Hold() // ESI answers nothing until released
		res := names.NewResolver(names.Config{
			Client: names.NewClient(names.ClientConfig{URL: esi.URL, Concurrent: 64}),
			Wait:   time.Hour, // only the answers end a wait here
		})
		DeferCleanup(res.Close)
		svc := startService()
		p, err := ingest.NewR2Z2(svc, ingest.R2Z2Config{
			URL: fake.URL + "/ephemeral", Idle: 10 * time.Millisecond, Rate: 1000,
			Timeout: time.Second, Logger: testLogger(), Names: res,
		})
		Expect(err).NotTo(HaveOccurred())
		runPoller(p)

		// Every file was fetched and its lookups are in flight side by
		// side, while none is stored: the first one's wait did not hold
		// up the others' lookups.
		Eventually(func() uint64 { return p.Stats().Next }).WithContext(ctx).Should(BeNumerically(">=", first+n))
		Eventually(esi.InFlight).WithContext(ctx).Should(BeNumerically(">=", n))
		Expect(p.Stats().Inserted).To(BeZero())
		_, stored := svc.Cursor(ingest.R2Z2Cursor)
		Expect(stored).To(BeFalse())

		esi.Release()
		Eventually(func() uint64 { v, _ := svc.Cursor(ingest.R2Z2Cursor); return v }).
			WithContext(ctx).Should(Equal(uint64(first + n - 1)))
		Expect(storedIDs(ctx, svc, systemsOf(kms...))).To(Equal(want))
		// Each was stored once its names were known.
		for _, km := range kms {
			w := names.Parties(km.JSON)
			for _, id := range w.Characters {
				e, ok := res.Lookup(id)
				Expect(ok).To(BeTrue())
				Expect(e.Name).NotTo(BeEmpty())
			}
		}
	}, SpecTimeout(60*time.Second))
})
