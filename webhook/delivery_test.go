package webhook_test

import (
	"encoding/json"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/webhook"
)

var _ = Describe("json webhooks", func() {
	It("post each event once, in order, signed, starting at the next killmail stored", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		before := h.insert(ctx, 3, 0)
		rcv := newJSONReceiver("s3cret", nil)
		h.mgr.Apply([]webhook.Webhook{hook("signed", rcv.URL, webhook.FormatJSON, "s3cret")})
		h.waitRunning(ctx, "signed")
		ids := h.insert(ctx, 20, 0)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids))
		Expect(ids[0]).To(Equal(before[2]+1), "the backlog stored before the webhook was not posted")
		d := rcv.deliveries()[0]
		Expect(d.Missed).To(BeFalse())
		var km struct {
			ID int64 `json:"killmail_id"`
		}
		Expect(json.Unmarshal(d.Killmail, &km)).To(Succeed())
		Expect(km.ID).NotTo(BeZero())
		badSig, badHeader := rcv.problems()
		Expect(badSig).To(BeZero())
		Expect(badHeader).To(BeEmpty())
		Eventually(func() webhook.Status { return h.status("signed") }).WithContext(ctx).Should(And(
			HaveField("State", webhook.StateIdle), HaveField("Position", ids[len(ids)-1]), HaveField("Lag", uint64(0)),
			HaveField("URL", rcv.URL+"/…"), HaveField("Signed", true)))
	}, SpecTimeout(30*time.Second))

	It("deliver only the systems of their filter", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		rcv := newJSONReceiver("", nil)
		h.mgr.Apply([]webhook.Webhook{hook("jita", rcv.URL, webhook.FormatJSON, "", 30000142)})
		h.waitRunning(ctx, "jita")
		var want []uint64
		for range 3 {
			h.insert(ctx, 2, 30002187)
			want = append(want, h.insert(ctx, 2, 30000142)...)
		}
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(want))
		Eventually(func() uint64 { return h.status("jita").Lag }).WithContext(ctx).Should(BeZero())
	}, SpecTimeout(30*time.Second))

	It("retry a receiver that answers 5xx or vanishes, and resume where it stopped", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		rcv := newJSONReceiver("", func(n int) string {
			switch n {
			case 2, 3, 4:
				return "500"
			case 6, 7:
				return "vanish"
			}
			return "ok"
		})
		h.mgr.Apply([]webhook.Webhook{hook("flaky", rcv.URL, webhook.FormatJSON, "")})
		h.waitRunning(ctx, "flaky")
		ids := h.insert(ctx, 10, 0)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids), "every event once, in order")
		Expect(rcv.requestCount()).To(Equal(15))
		Expect(h.status("flaky").LastError).To(ContainSubstring("receiver unavailable"))
	}, SpecTimeout(30*time.Second))

	It("let one hanging receiver delay neither another webhook nor the store", func(ctx SpecContext) {
		cfg := fastRetries
		cfg.Timeout = time.Hour // the hanging request never times out in this spec
		h := newHarness(cfg, eventlog.Config{})
		stuck := newJSONReceiver("", func(int) string { return "hang" })
		fine := newJSONReceiver("", nil)
		h.mgr.Apply([]webhook.Webhook{
			hook("stuck", stuck.URL, webhook.FormatJSON, ""),
			hook("fine", fine.URL, webhook.FormatJSON, ""),
		})
		h.waitRunning(ctx, "stuck")
		h.waitRunning(ctx, "fine")
		first := h.insert(ctx, 1, 0)
		Eventually(stuck.requestCount).WithContext(ctx).Should(Equal(1))
		more := h.insert(ctx, 30, 0) // the store takes inserts while a request hangs
		Eventually(fine.ids).WithContext(ctx).Should(Equal(append(first, more...)))
		Expect(h.status("stuck")).To(And(HaveField("State", webhook.StateDelivering), HaveField("Lag", uint64(31))))
		polled, err := h.svc.FetchForClient(ctx, "reader", selection.All())
		Expect(err).NotTo(HaveOccurred())
		Expect(polled.Events).To(HaveLen(31), "a poll is served while a webhook hangs")

		stuck.unblock()
		Eventually(stuck.ids).WithContext(ctx).Should(Equal(append(first, more...)))
	}, SpecTimeout(30*time.Second))

	It("mark a webhook failed after a few 4xx, stop holding retention for it, and start it again on Apply", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		var gone atomic.Bool
		gone.Store(true)
		rcv := newJSONReceiver("", func(int) string {
			if gone.Load() {
				return "404"
			}
			return "ok"
		})
		w := hook("deleted", rcv.URL, webhook.FormatJSON, "")
		h.mgr.Apply([]webhook.Webhook{w})
		h.waitRunning(ctx, "deleted")
		ids := h.insert(ctx, 3, 0)
		Eventually(func() string { return h.status("deleted").State }).WithContext(ctx).Should(Equal(webhook.StateFailed))
		Expect(rcv.requestCount()).To(Equal(1+webhook.DefaultMaxRejections), "the first try and its retries")
		Expect(h.status("deleted").LastError).To(ContainSubstring("404"))
		Consistently(rcv.requestCount).WithTimeout(200 * time.Millisecond).Should(Equal(1 + webhook.DefaultMaxRejections))

		// Retention: a reader that read everything lets GC drop the events
		// the failed webhook never delivered.
		Expect(h.svc.Advance(ctx, "reader", []int64{eventlog.AllSystems}, ids[2])).To(Succeed())
		st, err := h.svc.CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(Equal(ids[2]))

		gone.Store(false) // the receiver is back; a reload starts the webhook again
		h.mgr.Apply([]webhook.Webhook{w})
		later := h.insert(ctx, 2, 0)
		Eventually(rcv.deliveries).WithContext(ctx).Should(HaveLen(2))
		got := rcv.deliveries()
		Expect([]uint64{got[0].EventID, got[1].EventID}).To(Equal(later))
		Expect(got[0].Missed).To(BeTrue(), "the first event after the loss says so")
		Expect(got[1].Missed).To(BeFalse())
	}, SpecTimeout(30*time.Second))

	It("keep a configured webhook's events and client past the client TTL", func(ctx SpecContext) {
		now := time.Now()
		clock := make(chan time.Time, 1)
		clock <- now
		h := newHarness(fastRetries, eventlog.Config{ClientTTL: time.Minute, Now: func() time.Time {
			t := <-clock
			clock <- t
			return t
		}})
		var down atomic.Bool
		down.Store(true)
		rcv := newJSONReceiver("", func(int) string {
			if down.Load() {
				return "500"
			}
			return "ok"
		})
		h.mgr.Apply([]webhook.Webhook{hook("patient", rcv.URL, webhook.FormatJSON, "")})
		h.waitRunning(ctx, "patient")
		ids := h.insert(ctx, 4, 0)
		Expect(h.svc.Advance(ctx, "reader", []int64{eventlog.AllSystems}, ids[3])).To(Succeed())
		<-clock
		clock <- now.Add(time.Hour)
		st, err := h.svc.CollectGarbage(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Through).To(BeNumerically("<", ids[0]), "the undelivered events are kept")
		down.Store(false)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids))
	}, SpecTimeout(30*time.Second))

	It("tell a webhook that retention caps dropped events before it delivered them", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{MaxEvents: 5})
		var blocked atomic.Bool
		blocked.Store(true)
		down := func(int) string {
			if blocked.Load() {
				return "503"
			}
			return "ok"
		}
		rcv := newJSONReceiver("", down)
		disc := newFakeDiscord(100, time.Second, down)
		h.mgr.Apply([]webhook.Webhook{hook("behind", rcv.URL, webhook.FormatJSON, ""), hook("discord", disc.URL, webhook.FormatDiscord, "")})
		h.waitRunning(ctx, "behind")
		h.waitRunning(ctx, "discord")
		ids := h.insert(ctx, 12, 0) // the cap drops the first 7
		Eventually(rcv.requestCount).WithContext(ctx).Should(BeNumerically(">", 1))
		blocked.Store(false)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids[7:]), "what was retained arrived, in order")
		got := rcv.deliveries()
		Expect(got[0].Missed).To(BeTrue())
		for _, d := range got[1:] {
			Expect(d.Missed).To(BeFalse())
		}

		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(5))
		msgs, violations, _, _ := disc.snapshot()
		Expect(violations).To(BeEmpty())
		Expect(msgs[0].Embeds).To(BeEmpty())
		Expect(msgs[0].Content).To(ContainSubstring("Up to 7 killmails were dropped"))
	}, SpecTimeout(30*time.Second))
})
