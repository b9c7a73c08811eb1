package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/webhook"
)

// party is what the spec reads of a victim or an attacker.
type party struct {
	Character   int64 `json:"character_id"`
	Corporation int64 `json:"corporation_id"`
	Alliance    int64 `json:"alliance_id"`
}

// The spec below draws docs/discord.png: a webhook delivers two killmails
// to the fake Discord, whose received message is rendered as a page
// styled like Discord's embeds and pictured by headless Chromium. It runs
// only when KILLFEED_DISCORD_SCREENSHOT names the file.
var _ = Describe("a Discord message", func() {
	It("draws a screenshot of what the fake Discord received", func(ctx SpecContext) {
		path := os.Getenv("KILLFEED_DISCORD_SCREENSHOT")
		if path == "" {
			Skip("KILLFEED_DISCORD_SCREENSHOT is not set")
		}
		kms := fixture.Killmails()
		victims := []killmail.Killmail{kms[17], kms[13]}
		// Names from the names renderer: ships, systems and regions from
		// the static data, pilots and corporations from a fake ESI that
		// knows them by these names.
		esi := fakeesi.New(false)
		DeferCleanup(esi.Close)
		pilots := []string{"Aura Vexley", "Tarn Okonedo", "Rook Halvard", "Mira Oskane", "Jett Ramsay", "Ilse Varkonen", "Doran Pike"}
		for i, k := range victims {
			var km struct {
				Victim    party   `json:"victim"`
				Attackers []party `json:"attackers"`
			}
			Expect(json.Unmarshal(k.JSON, &km)).To(Succeed())
			corp := [][2]string{{"Holdfast Logistics", "HOLD"}, {"Sundering Veil", "SVL"}}[i]
			esi.Character(km.Victim.Character, pilots[i])
			esi.Corporation(km.Victim.Corporation, corp[0], corp[1])
			for j, a := range km.Attackers {
				esi.Character(a.Character, pilots[2+(i+j)%5])
				esi.Corporation(a.Corporation, "Ashen Lotus", "ASHL")
			}
			for _, al := range append([]party{km.Victim}, km.Attackers...) {
				if al.Alliance != 0 {
					esi.Alliance(al.Alliance, "Alliance "+strconv.FormatInt(al.Alliance%1000, 10), "A"+strconv.FormatInt(al.Alliance%100, 10))
				}
			}
		}
		res := names.NewResolver(names.Config{Client: names.NewClient(names.ClientConfig{URL: esi.URL, Contact: "docs@example.org"}), Wait: 10 * time.Second})
		DeferCleanup(res.Close)
		render := names.NewRenderer(res, nil, 0)
		cfg := fastRetries
		cfg.Enrich = func(_ context.Context, ev eventlog.Event) []byte { return render.Render(ev) }
		h := newHarness(cfg, eventlog.Config{})
		disc := newFakeDiscord(100, time.Second, nil)
		// The filter follows one alliance: the victim of the first
		// killmail (red), among the attackers of the second (green).
		w := hook("alliance-feed", disc.URL, webhook.FormatDiscord, "")
		w.Filter.Entities.Alliances = []int64{99010928}
		h.mgr.Apply([]webhook.Webhook{w})
		h.waitRunning(ctx, "alliance-feed")
		var parts []map[string]any
		for i, v := range []float64{1.25e9, 312.4e6} {
			var obj map[string]any
			Expect(json.Unmarshal(victims[i].JSON, &obj)).To(Succeed())
			obj["killmail_id"] = 2_000_000_000 + i
			obj["solar_system_id"] = []int64{30000142, 30000144}[i]
			obj["zkb"] = map[string]any{"totalValue": v, "labels": []string{"pvp", "loc:highsec"}}
			parts = append(parts, obj)
		}
		var batch []killmail.Killmail // one insert: one message
		for _, p := range parts {
			b, _ := json.Marshal(p)
			km, err := killmail.Parse(b)
			Expect(err).NotTo(HaveOccurred())
			batch = append(batch, km)
		}
		res.Warm(ctx, batch) // as an insert does: the names are known when the webhook renders
		Expect(h.svc.Insert(ctx, batch, nil)).Error().NotTo(HaveOccurred())
		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(2))
		msgs, violations, _, _ := disc.snapshot()
		Expect(violations).To(BeEmpty())
		page := filepath.Join(GinkgoT().TempDir(), "discord.html")
		Expect(os.WriteFile(page, []byte(discordPage(msgs)), 0o644)).To(Succeed())
		out, err := exec.CommandContext(ctx, chromium(), "--headless", "--no-sandbox", "--disable-gpu",
			"--hide-scrollbars", "--window-size=760,740", "--screenshot="+path, "file://"+page).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		fmt.Fprintln(GinkgoWriter, "wrote", path)
	}, SpecTimeout(60*time.Second))
})

func chromium() string {
	if p := os.Getenv("KILLFEED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Skip("no chromium to draw with")
	return ""
}

var bold = regexp.MustCompile(`\*\*(.+?)\*\*`)

// discordPage renders messages as Discord shows them in a dark-themed
// channel. Images from images.evetech.net are drawn as placeholders: the
// test machine has no network.
func discordPage(msgs []discordMessage) string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#313338;font-family:"gg sans","Noto Sans","Helvetica Neue",Helvetica,Arial,sans-serif;color:#dbdee1;font-size:15px}
.msg{display:flex;padding:14px 16px 6px 16px}
.avatar{width:40px;height:40px;border-radius:50%;background:#5865f2;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700;margin-right:16px;flex:none}
.head{font-weight:600;color:#f2f3f5}.head .bot{background:#5865f2;color:#fff;font-size:10px;border-radius:3px;padding:1px 4px;margin-left:4px;vertical-align:2px}
.head .when{color:#949ba4;font-size:12px;font-weight:400;margin-left:6px}
.embed{display:flex;background:#2b2d31;border-left:4px solid;border-radius:4px;max-width:520px;margin-top:8px;padding:8px 16px 16px 12px}
.body{flex:1}.author{display:flex;align-items:center;font-size:14px;font-weight:600;color:#f2f3f5;margin-top:8px}
.author i{width:24px;height:24px;border-radius:50%;background:#4e5058;margin-right:8px;display:inline-block}
.title{margin-top:8px;font-weight:600;color:#00a8fc}.desc{margin-top:8px;font-size:14px;line-height:1.35}
.fields{display:grid;grid-template-columns:repeat(3,1fr);gap:8px 12px;margin-top:8px}.field{font-size:14px}.field.wide{grid-column:1/4}
.field b{display:block;color:#f2f3f5;font-weight:600;margin-bottom:2px}
.thumb{width:80px;height:80px;border-radius:3px;margin:8px 0 0 16px;background:radial-gradient(circle at 40% 40%,#6d7a8a,#1e2226);color:#b5bac1;font-size:10px;display:flex;align-items:flex-end;justify-content:center;flex:none}
.footer{margin-top:8px;font-size:12px;color:#b5bac1}
</style></head><body>`)
	for _, m := range msgs {
		b.WriteString(`<div class="msg"><div class="avatar">KF</div><div><div class="head">killfeed<span class="bot">APP</span><span class="when">Today at 22:41</span></div>`)
		if m.Content != "" {
			b.WriteString(`<div class="desc">` + html.EscapeString(m.Content) + `</div>`)
		}
		for _, e := range m.Embeds {
			fmt.Fprintf(&b, `<div class="embed" style="border-color:#%06x"><div class="body">`, e.Color)
			if e.Author != nil {
				b.WriteString(`<div class="author"><i></i>` + html.EscapeString(e.Author.Name) + `</div>`)
			}
			b.WriteString(`<div class="title">` + html.EscapeString(e.Title) + `</div>`)
			b.WriteString(`<div class="desc">` + bold.ReplaceAllString(html.EscapeString(e.Description), "<b>$1</b>") + `</div><div class="fields">`)
			for _, f := range e.Fields {
				class := "field"
				if !f.Inline {
					class += " wide"
				}
				b.WriteString(`<div class="` + class + `"><b>` + html.EscapeString(f.Name) + `</b>` + html.EscapeString(f.Value) + `</div>`)
			}
			b.WriteString(`</div>`)
			if e.Footer != nil {
				when := e.Timestamp
				if t, err := time.Parse(time.RFC3339, e.Timestamp); err == nil {
					when = t.Format("02/01/2006 15:04")
				}
				b.WriteString(`<div class="footer">` + html.EscapeString(e.Footer.Text) + ` • ` + when + `</div>`)
			}
			b.WriteString(`</div>`)
			if e.Thumbnail != nil {
				b.WriteString(`<div class="thumb">render</div>`)
			}
			b.WriteString(`</div>`)
		}
		b.WriteString(`</div></div>`)
	}
	b.WriteString(`</body></html>`)
	return b.String()
}
