package webhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/webhook"
)

// killmailOf decodes the fields a spec compares an embed with.
type killFacts struct {
	ID     int64  `json:"killmail_id"`
	Time   string `json:"killmail_time"`
	Victim struct {
		CharacterID int64 `json:"character_id"`
		AllianceID  int64 `json:"alliance_id"`
		ShipTypeID  int64 `json:"ship_type_id"`
	} `json:"victim"`
	Attackers []struct {
		AllianceID int64 `json:"alliance_id"`
		FinalBlow  bool  `json:"final_blow"`
	} `json:"attackers"`
}

func factsOf(km []byte) killFacts {
	GinkgoHelper()
	var f killFacts
	Expect(json.Unmarshal(km, &f)).To(Succeed())
	return f
}

var _ = Describe("discord webhooks", func() {
	It("post up to ten embeds a message, in order, within Discord's limits and rate limits", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		// A bucket of 2 requests per 300 ms, and a 429 out of the blue on
		// the second request: the webhook must wait both out.
		disc := newFakeDiscord(2, 300*time.Millisecond, func(n int) string {
			if n == 1 {
				return "429"
			}
			return ""
		})
		h.mgr.Apply([]webhook.Webhook{hook("feed", disc.URL, webhook.FormatDiscord, "")})
		h.waitRunning(ctx, "feed")
		ids := h.insert(ctx, 35, 0)
		var want []int64
		batch, err := h.log.Since(selection.All(), 0, 0)
		Expect(err).NotTo(HaveOccurred())
		for _, ev := range batch.Events {
			want = append(want, factsOf(ev.Killmail).ID)
		}
		Expect(want).To(HaveLen(len(ids)))
		Eventually(disc.killmailIDs).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal(want))

		msgs, violations, early, limited := disc.snapshot()
		Expect(violations).To(BeEmpty())
		Expect(early).To(BeZero(), "no request was sent before the rate limit allowed it")
		Expect(limited).To(Equal(1))
		Expect(len(msgs)).To(BeNumerically(">=", 4))
		for _, m := range msgs {
			Expect(len(m.Embeds)).To(BeNumerically("<=", 10))
		}

		f := factsOf(batch.Events[0].Killmail)
		e := msgs[0].Embeds[0]
		Expect(e.URL).To(Equal("https://zkillboard.com/kill/" + itoa(f.ID) + "/"))
		Expect(e.Timestamp).To(Equal(f.Time))
		Expect(e.Thumbnail.URL).To(Equal("https://images.evetech.net/types/" + itoa(f.Victim.ShipTypeID) + "/render?size=128"))
		Expect(e.Color).To(Equal(0x5865F2), "neutral: the filter names no entity")
		fields := map[string]string{}
		for _, fl := range e.Fields {
			fields[fl.Name] = fl.Value
		}
		Expect(fields).To(HaveKeyWithValue("Value", MatchRegexp(`^1\.25B ISK$`)))
		Expect(fields).To(HaveKeyWithValue("Attackers", itoa(int64(len(f.Attackers)))))
		Expect(fields).To(HaveKey("Final blow"))
		Expect(fields["System"]).To(MatchRegexp(`\(-?\d\.\d\) · \S`), "system name, security and region from the static data")
		Expect(e.Author.Name).To(Equal("Character "+itoa(f.Victim.CharacterID)), "without names, ids")
	}, SpecTimeout(60*time.Second))

	It("colour a loss red and a kill green for the filter's entity, and show names enrichment adds", func(ctx SpecContext) {
		cfg := fastRetries
		cfg.Enrich = func(_ context.Context, ev eventlog.Event) []byte {
			var km map[string]any
			Expect(json.Unmarshal(ev.Killmail, &km)).To(Succeed())
			v := km["victim"].(map[string]any)
			v["character_name"] = "Pilot " + strings.Repeat("Ü", 3000) // longer than any limit
			v["corporation_ticker"] = "TICK"
			v["ship_type_name"] = "Rifter"
			km["solar_system_name"] = "Jita"
			km["region_name"] = "The Forge"
			b, _ := json.Marshal(km)
			return b
		}
		h := newHarness(cfg, eventlog.Config{})
		disc := newFakeDiscord(100, time.Second, nil)
		// The webhooks join the log (at its head) and stop; the killmail is
		// stored; then they start again, following the alliances found in
		// it, and resume where they were (a name seen before resumes).
		losses, kills := hook("losses", disc.URL, webhook.FormatDiscord, ""), hook("kills", disc.URL, webhook.FormatDiscord, "")
		h.mgr.Apply([]webhook.Webhook{losses, kills})
		h.waitRunning(ctx, "losses")
		h.waitRunning(ctx, "kills")
		h.mgr.Apply(nil)                    // both stop, their offsets stay at the head
		ids := h.insertFixtures(ctx, 0, 13) // a killmail with alliances on both sides
		batch, err := h.log.Since(selection.All(), ids[0]-1, 1)
		Expect(err).NotTo(HaveOccurred())
		f := factsOf(batch.Events[0].Killmail)
		Expect(f.Victim.AllianceID).NotTo(BeZero())
		Expect(f.Attackers[0].AllianceID).NotTo(BeZero())
		losses.Filter.Entities.Alliances = []int64{f.Victim.AllianceID}
		kills.Filter.Entities.Alliances = []int64{f.Attackers[0].AllianceID}
		h.mgr.Apply([]webhook.Webhook{losses})
		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(1))
		h.mgr.Apply([]webhook.Webhook{losses, kills})
		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(2))

		msgs, violations, _, _ := disc.snapshot()
		Expect(violations).To(BeEmpty(), "names longer than every limit are cut to fit")
		Expect(msgs[0].Embeds[0].Color).To(Equal(0xE74C3C))
		Expect(msgs[1].Embeds[0].Color).To(Equal(0x2ECC71))
		e := msgs[0].Embeds[0]
		Expect(e.Title).To(Equal("Rifter destroyed in Jita"))
		Expect(e.Author.Name).To(HavePrefix("Pilot ÜÜ"))
		Expect(e.Author.Name).To(HaveSuffix("…"))
		Expect(e.Description).To(ContainSubstring("**Rifter** in **Jita ("))
		Expect(e.Description).To(ContainSubstring("The Forge"))

		// Embeds this large fit only a few to a message (6000 characters).
		h.insert(ctx, 8, 0)
		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(2 + 2*8))
		msgs, violations, _, _ = disc.snapshot()
		Expect(violations).To(BeEmpty())
		sizes := map[int]int{}
		for _, m := range msgs[2:] {
			sizes[len(m.Embeds)]++
		}
		Expect(sizes).NotTo(HaveKey(BeNumerically(">", 3)), "fewer than ten per message: the total limit binds")
		Expect(sizes).To(HaveKey(BeNumerically(">", 1)), "but more than one")
	}, SpecTimeout(30*time.Second))

	It("share the rate limit of a URL between the webhooks that post to it", func(ctx SpecContext) {
		h := newHarness(fastRetries, eventlog.Config{})
		disc := newFakeDiscord(1, 200*time.Millisecond, nil) // one request per 200 ms
		h.mgr.Apply([]webhook.Webhook{
			hook("a", disc.URL, webhook.FormatDiscord, ""), hook("b", disc.URL, webhook.FormatDiscord, ""),
		})
		h.waitRunning(ctx, "a")
		h.waitRunning(ctx, "b")
		for range 3 {
			h.insert(ctx, 1, 0)
		}
		Eventually(disc.killmailIDs).WithContext(ctx).WithTimeout(20 * time.Second).Should(HaveLen(6))
		_, violations, early, _ := disc.snapshot()
		Expect(violations).To(BeEmpty())
		Expect(early).To(BeZero(), "neither webhook posted into the other's empty bucket")
	}, SpecTimeout(60*time.Second))
})
