package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/universe"
)

// dashWait bounds each wait for the page, well within the spec's timeout, so
// that a failure shows what the page had rather than a canceled context.
const dashWait = 30 * time.Second

// chromiumPath finds a Chromium or Chrome binary: $KILLFEED_CHROMIUM, then
// the usual names on PATH. "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("KILLFEED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile and returns
// a tab's context; the browser is closed after the spec. The spec is skipped
// when no Chromium is installed.
func startBrowser() context.Context {
	GinkgoHelper()
	path := chromiumPath()
	if path == "" {
		Skip("no Chromium found (looked for $KILLFEED_CHROMIUM, chromium, chromium-browser, google-chrome, headless-shell on PATH): " +
			"install it with `apt-get install -y chromium` or `go tool task packages`")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the specs may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(GinkgoT().TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(f string, a ...any) {
		fmt.Fprintf(GinkgoWriter, "chromedp: "+f+"\n", a...)
	}))
	DeferCleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, so that a broken install fails here, clearly.
	Expect(chromedp.Do(ctx, chromedp.Navigate("about:blank"))).To(Succeed(), "starting %s", path)
	return ctx
}

// dashInsert posts n real killmails (with a zkb block) into system and
// returns their event ids and the killmails as sent.
func dashInsert(ctx context.Context, base string, system int64, n int) ([]uint64, []map[string]json.RawMessage) {
	GinkgoHelper()
	body := zkbKillmails(system, n, true)
	ids := postKillmails(ctx, base, body)
	var sent []map[string]json.RawMessage
	Expect(json.Unmarshal(body, &sent)).To(Succeed())
	return ids, sent
}

// insertShipName posts one real killmail into system whose victim carries
// a ship_type_name, and returns its event id.
func insertShipName(ctx context.Context, base string, system int64, name string) uint64 {
	GinkgoHelper()
	obj := maps.Clone(wsFixture()[0])
	var victim map[string]any
	Expect(json.Unmarshal(obj["victim"], &victim)).To(Succeed())
	victim["ship_type_name"] = name
	var err error
	obj["victim"], err = json.Marshal(victim)
	Expect(err).NotTo(HaveOccurred())
	obj["solar_system_id"] = json.RawMessage(itoa(system))
	obj["killmail_id"] = json.RawMessage(itoa(wsKillmailIDs.Add(1)))
	body, err := json.Marshal(obj)
	Expect(err).NotTo(HaveOccurred())
	r := post(ctx, base+"/api/killmails", body)
	Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
	var res struct {
		EventID uint64 `json:"event_id"`
	}
	r.JSON(&res)
	return res.EventID
}

// feedIDs are the event ids of the page's feed rows, top (newest) first.
func feedIDs(ctx context.Context) []uint64 {
	GinkgoHelper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]uint64](
		`[...document.querySelectorAll("#feed > li")].map((li) => Number(li.dataset.eventId))`))
	Expect(err).NotTo(HaveOccurred())
	return ids
}

// connAttr reads a data attribute of the page's connection status.
func connAttr(ctx context.Context, name string) string {
	GinkgoHelper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("conn").dataset.`+name+` ?? ""`))
	Expect(err).NotTo(HaveOccurred())
	return v
}

// newestFirst is ids in the order the feed shows them.
func newestFirst(ids ...[]uint64) []uint64 {
	out := slices.Concat(ids...)
	slices.Reverse(out)
	return out
}

// wsGate stands between the browser and killfeed: it passes HTTP on, and
// websockets to /api/ws unless blocked; cut drops the open ones abruptly
// (no close frame: the browser sees 1006).
type wsGate struct {
	URL     string // what the browser opens
	backend string // killfeed's host:port
	proxy   *httputil.ReverseProxy
	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
}

func startGate(base string) *wsGate {
	GinkgoHelper()
	u, err := url.Parse(base)
	Expect(err).NotTo(HaveOccurred())
	g := &wsGate{backend: u.Host, proxy: httputil.NewSingleHostReverseProxy(u), conns: make(map[net.Conn]struct{})}
	srv := httptest.NewServer(g)
	g.URL = srv.URL
	DeferCleanup(func() {
		g.cut()
		srv.Close()
	})
	return g
}

func (g *wsGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/ws" {
		g.proxy.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	blocked := g.blocked
	g.mu.Unlock()
	if blocked {
		http.Error(w, "blocked by the spec", http.StatusServiceUnavailable)
		return
	}
	back, err := net.Dial("tcp", g.backend)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	front, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		back.Close()
		return
	}
	if err := r.Write(back); err != nil {
		back.Close()
		front.Close()
		return
	}
	g.mu.Lock()
	g.conns[front], g.conns[back] = struct{}{}, struct{}{}
	g.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(back, buf); done <- struct{}{} }()
	go func() { _, _ = io.Copy(front, back); done <- struct{}{} }()
	<-done
	front.Close()
	back.Close()
	<-done
	g.mu.Lock()
	delete(g.conns, front)
	delete(g.conns, back)
	g.mu.Unlock()
}

// block refuses (true) or passes again (false) new websockets.
func (g *wsGate) block(b bool) {
	g.mu.Lock()
	g.blocked = b
	g.mu.Unlock()
}

// cut drops every open websocket without a close frame.
func (g *wsGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		_ = c.Close()
	}
}

// followByName types text in the follow box and picks the suggestion of
// kind and id.
func followByName(ctx context.Context, text, kind string, id int64) {
	GinkgoHelper()
	option := fmt.Sprintf(`#suggestions li[data-kind=%q][data-id="%d"]`, kind, id)
	Expect(chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#pick"), text),
		chromedp.WaitVisible(chromedp.CSS(option)),
		chromedp.Click(chromedp.CSS(option)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#following li[data-kind=%q][data-id="%d"]`, kind, id))),
	)).To(Succeed())
}

var _ = Describe("Dashboard (GET /)", func() {
	It("has its resume, reconnect and search logic pass node's tests (specs/js/dashboard.test.mjs)", func(ctx SpecContext) {
		_, err := exec.LookPath("node")
		Expect(err).NotTo(HaveOccurred(), "the dashboard's JavaScript tests need Node.js 20+ on PATH")
		cmd := exec.CommandContext(ctx, "node", "--test", "dashboard.test.mjs")
		cmd.Dir = fixture.Path("specs", "js")
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(GinkgoWriter, "%s", out)
		Expect(err).NotTo(HaveOccurred(), "node --test dashboard.test.mjs:\n%s", out)
	}, SpecTimeout(time.Minute))

	It("follows a system picked by name, shows its killmails live, and resumes after a dropped socket without a gap or a duplicate",
		func(sctx SpecContext) {
			ctx := startBrowser()    // first: it skips when there is no Chromium
			esi := fakeesi.New(true) // names every id: "Character N", "Corporation N" [CN]
			DeferCleanup(esi.Close)
			kf := startKillfeed(app.Config{Names: app.NamesConfig{ESI: true, URL: esi.URL}})
			gate := startGate(kf.URL())
			ctx, cancel := context.WithTimeout(ctx, 110*time.Second)
			defer cancel()

			Expect(chromedp.Do(ctx,
				chromedp.Navigate(gate.URL+"/"),
				chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
			)).To(Succeed())
			followByName(ctx, "Jita", "system", jita)
			Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("state").Should(Equal("live"))
			Expect(chromedp.Run(ctx, chromedp.Location())).To(HaveSuffix("#systems=30000142"))

			// Live: Jita's killmails appear, newest first; Amarr's do not.
			first, sent := dashInsert(sctx, kf.URL(), jita, 3)
			dashInsert(sctx, kf.URL(), amarr, 2)
			second, _ := dashInsert(sctx, kf.URL(), jita, 2)
			hostile := `<img src=x onerror="document.body.dataset.pwned=1">`
			second = append(second, insertShipName(sctx, kf.URL(), jita, hostile))
			Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newestFirst(first, second)))

			// Killmail text is shown as text, never parsed as HTML.
			named := fmt.Sprintf(`#feed li[data-event-id="%d"]`, second[len(second)-1])
			shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(named+" .kill-ship")))
			Expect(err).NotTo(HaveOccurred())
			Expect(shown).To(Equal(hostile))
			Expect(chromedp.Run(ctx, chromedp.Evaluate[bool](
				`document.querySelector("#feed img") === null && !("pwned" in document.body.dataset)`))).To(BeTrue())

			// A row says what the killmail says.
			var km struct {
				KillmailID int64 `json:"killmail_id"`
				Victim     struct {
					ShipTypeID    int64 `json:"ship_type_id"`
					CharacterID   int64 `json:"character_id"`
					CorporationID int64 `json:"corporation_id"`
				} `json:"victim"`
			}
			raw, err := json.Marshal(sent[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(json.Unmarshal(raw, &km)).To(Succeed())
			row := fmt.Sprintf(`#feed li[data-event-id="%d"]`, first[0])
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
			Expect(err).NotTo(HaveOccurred())
			Expect(text).To(ContainSubstring("Jita"))
			ship, ok := universe.Default().Type(km.Victim.ShipTypeID)
			Expect(ok).To(BeTrue())
			Expect(text).To(ContainSubstring(ship.Name))
			Expect(text).To(ContainSubstring("The Forge"))
			// The victim by name and corporation ticker, as ESI names them.
			if km.Victim.CharacterID > 0 {
				Expect(text).To(ContainSubstring(fmt.Sprintf("Character %d", km.Victim.CharacterID)))
			}
			Expect(text).To(ContainSubstring(fmt.Sprintf("[C%d]", km.Victim.CorporationID%100000)))
			Expect(text).To(ContainSubstring(fmt.Sprintf("%d.25 ISK", km.KillmailID%1000)))
			href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(row+" a"), "href"))
			Expect(err).NotTo(HaveOccurred())
			Expect(href.Value).To(Equal(fmt.Sprintf("https://zkillboard.com/kill/%d/", km.KillmailID)))

			// The store's figures: the page's own socket, the head.
			head := second[len(second)-1]
			Eventually(func(g Gomega) {
				st, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
					`Object.fromEntries([...document.querySelectorAll("[data-stat]")].map((d) => [d.dataset.stat, d.textContent]))`))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(st).To(HaveKeyWithValue("head", fmt.Sprint(head)))
				g.Expect(st).To(HaveKeyWithValue("websockets", "1"))
				g.Expect(st).To(HaveKeyWithValue("events", "8"))
			}).WithContext(ctx).WithTimeout(dashWait).Should(Succeed())

			// Drop the socket, keep the browser from reconnecting while
			// more killmails are stored, then let it: it gets exactly what
			// it missed, once, in order. Once closed by the server (1001 as
			// on a deploy), once cut with no close frame (1006).
			all := slices.Concat(first, second)
			for i, drop := range []struct {
				how string
				do  func()
			}{
				{"closed by the server", func() { Expect(kf.API().CloseWebsockets(sctx)).To(Succeed()) }},
				{"cut", gate.cut},
			} {
				By("a socket " + drop.how)
				gate.block(true)
				drop.do()
				Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("state").Should(Equal("retrying"))
				missed, _ := dashInsert(sctx, kf.URL(), jita, 4)
				dashInsert(sctx, kf.URL(), amarr, 1)
				missed2, _ := dashInsert(sctx, kf.URL(), jita, 1)
				// The gate works: the page tried again and was refused.
				Eventually(func() int {
					n, _ := strconv.Atoi(connAttr(ctx, "failures"))
					return n
				}).WithContext(ctx).WithTimeout(dashWait).Should(BeNumerically(">=", 2))
				Expect(connAttr(ctx, "subscriptions")).To(Equal(fmt.Sprint(i + 1)))
				Expect(feedIDs(ctx)).To(Equal(newestFirst(all)))

				gate.block(false)
				Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("subscriptions").Should(Equal(fmt.Sprint(i + 2)))
				all = slices.Concat(all, missed, missed2)
				Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newestFirst(all)))
			}
			live, _ := dashInsert(sctx, kf.URL(), jita, 2)
			want := newestFirst(all, live)
			Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(want))
			Expect(connAttr(ctx, "duplicates")).To(Equal("0"))
			Expect(connAttr(ctx, "state")).To(Equal("live"))
			Expect(connAttr(ctx, "since")).To(Equal(fmt.Sprint(want[0])))

			By("following another system from the keyboard, then no longer")
			Expect(chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS("#pick"), "amarr"),
				chromedp.WaitVisible(chromedp.CSS(`#suggestions li[aria-selected="true"][data-kind="system"][data-id="30002187"]`)),
				chromedp.SendKeys(chromedp.CSS("#pick"), kb.Enter),
				chromedp.WaitVisible(chromedp.CSS(`#following li[data-kind="system"][data-id="30002187"]`)),
			)).To(Succeed())
			Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("subscriptions").Should(Equal("4"))
			both, _ := dashInsert(sctx, kf.URL(), amarr, 1)
			jitaToo, _ := dashInsert(sctx, kf.URL(), jita, 1)
			want = newestFirst(all, live, both, jitaToo)
			Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(want))
			Expect(chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#following button[data-key="system:30002187"]`)))).To(Succeed())
			Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("subscriptions").Should(Equal("5"))
			dashInsert(sctx, kf.URL(), amarr, 1)
			last, _ := dashInsert(sctx, kf.URL(), jita, 1)
			Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newestFirst(all, live, both, jitaToo, last)))
			Expect(connAttr(ctx, "duplicates")).To(Equal("0"))

			if path := os.Getenv("KILLFEED_DASHBOARD_SCREENSHOT"); path != "" {
				screenshot(sctx, ctx, kf.URL(), esi, path)
			}
		}, SpecTimeout(2*time.Minute))
})

// screenshot adds a region and another system to the page, stores a mix of
// real killmails with zKillboard-like values and writes a 1280x800 PNG of
// the page to path. It runs only
// when KILLFEED_DASHBOARD_SCREENSHOT names the file (docs/dashboard.png is
// made so).
func screenshot(sctx, ctx context.Context, base string, esi *fakeesi.Server, path string) {
	GinkgoHelper()
	pilots := []string{"Aria Vexley", "Torvald Skarn", "Mira Okonkwo", "Sable Hrothgar", "Ilse Varnaud", "Kenji Aramaki",
		"Tamsin Reyes", "Oskar Lindqvist", "Zara Khoury", "Dmitri Volkov", "Noor Haddad", "Leif Aasen", "Ines Moreau", "Caspian Drake"}
	corps := [][2]string{{"Blackwater Salvage", "BWSAL"}, {"Ninth Orbit Logistics", "N9OL"}, {"Red Ledger Holdings", "RLEDG"},
		{"Quiet Anvil", "QANVL"}, {"Solstice Reclamation", "SOLR"}}
	alliances := [][2]string{{"Northern Compact", "NCMP"}, {"Hollow Crown Federation", "HOLLO"}}
	followByName(ctx, "The Forge", "region", theForge)
	followByName(ctx, "Amarr", "system", amarr)
	Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("state").Should(Equal("live"))
	Expect(chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#clear")))).To(Succeed())
	all := wsFixture()
	values := []float64{8.92e6, 124.5e6, 2.31e9, 45.2e6, 610e3, 17.8e6, 1.04e9, 312.7e6, 3.3e6, 96.1e6, 27.4e6, 5.75e9, 71e6, 1.9e6}
	systems := []int64{jita, perimeter, amarr, itamo, jita, jita, amarr, 30000145, jita, perimeter, amarr, jita, 30000139, jita}
	parts := make([]string, len(values))
	for i, v := range values {
		obj := maps.Clone(all[(i*41+7)%len(all)])
		// Victims of ids no earlier read asked about, with made-up names.
		var victim map[string]any
		Expect(json.Unmarshal(obj["victim"], &victim)).To(Succeed())
		char, corp, ally := int64(95_000_000+i), int64(98_900_000+i%len(corps)), int64(99_900_000+i%len(alliances))
		victim["character_id"], victim["corporation_id"], victim["alliance_id"] = char, corp, ally
		esi.Character(char, pilots[i%len(pilots)])
		c := corps[i%len(corps)]
		esi.Corporation(corp, c[0], c[1])
		a := alliances[i%len(alliances)]
		esi.Alliance(ally, a[0], a[1])
		vb, err := json.Marshal(victim)
		Expect(err).NotTo(HaveOccurred())
		obj["victim"] = vb
		id := wsKillmailIDs.Add(1)
		obj["solar_system_id"] = json.RawMessage(itoa(systems[i]))
		obj["killmail_id"] = json.RawMessage(itoa(id))
		obj["zkb"] = json.RawMessage(fmt.Sprintf(`{"locationID":60003760,"hash":"h%d","totalValue":%.2f,"points":1,"npc":false,"solo":false,"awox":false}`, id, v))
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		parts[i] = string(b)
	}
	r := post(sctx, base+"/api/killmails", []byte("["+strings.Join(parts, ",")+"]"))
	Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
	Eventually(func() int { return len(feedIDs(ctx)) }).WithContext(ctx).WithTimeout(dashWait).Should(Equal(len(values)))
	newest := fmt.Sprint(feedIDs(ctx)[0])
	Eventually(func() (string, error) { // the figures caught up too
		return chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("stats").dataset.head`))
	}).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newest))
	Expect(chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800))).To(Succeed())
	time.Sleep(1500 * time.Millisecond) // let the arrival highlight fade; the picture is not an assertion
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(path, png, 0o644)).To(Succeed())
	fmt.Fprintln(GinkgoWriter, "wrote", path, len(png), "bytes")
}
