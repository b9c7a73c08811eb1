package specs_test

import (
	"log/slog"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/app"
)

var _ = Describe("retention", func() {
	It("counts the events dropped by the caps in the metrics and the log", func(ctx SpecContext) {
		logs := gbytes.NewBuffer()
		a := startKillfeed(app.Config{MaxEvents: 10, MinRetention: app.DefaultMinRetention, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		for range 4 {
			wsInsert(ctx, a.URL(), jita, 10)
		}
		p := get(ctx, pollURL(a.URL(), "/api/killfeed", "late", []int64{jita}))
		var poll pollAnswer
		p.JSON(&poll)
		Expect(poll.Events).To(HaveLen(10))
		st, err := a.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.DroppedByCaps).To(Equal(30))
		s := scrapeMetrics(ctx, a.URL())
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "caps")).To(Equal(30.0))
		Expect(s.value("killfeed_gc_dropped_events_total", "reason", "read_by_all")).To(BeZero())
		Expect(logs).To(gbytes.Say(`msg="collected garbage" dropped=30 dropped_by_reads=0 dropped_by_caps=30 dropped_by_age=0`))
	}, SpecTimeout(30*time.Second))

	It("keeps the last --min-retention (1h by default) for a new client, even when every client has read it", func(ctx SpecContext) {
		a := startKillfeed(app.Config{MinRetention: app.DefaultMinRetention})
		jitaIDs := wsInsert(ctx, a.URL(), jita, 5)
		amarrIDs := wsInsert(ctx, a.URL(), amarr, 3)
		for _, c := range []string{"mapper-1", "mapper-2"} {
			Expect(get(ctx, pollURL(a.URL(), "/api/killfeed", c, []int64{jita, amarr})).Status).To(Equal(http.StatusOK))
		}
		st, err := a.Actors().CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Dropped).To(BeZero())
		var poll pollAnswer
		get(ctx, pollURL(a.URL(), "/api/killfeed", "new-mapper", []int64{amarr})).JSON(&poll)
		Expect(poll.IDs()).To(Equal(amarrIDs))
		Expect(poll.Missed).To(BeFalse())
		get(ctx, pollURL(a.URL(), "/api/killfeed", "another", []int64{jita})).JSON(&poll)
		Expect(poll.IDs()).To(Equal(jitaIDs))
	}, SpecTimeout(30*time.Second))
})
