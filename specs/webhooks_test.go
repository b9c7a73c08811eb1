package specs_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fakeesi"
	"github.com/killfeed/killfeed/webhook"
)

// hookReceiver is a json webhook endpoint: it checks each signature and
// records the event ids it accepted, in order. Once it accepted hangAfter
// events (when > 0), it holds the next request until its sender goes away.
type hookReceiver struct {
	*httptest.Server
	secret string

	mu        sync.Mutex
	got       []uint64
	bodies    []json.RawMessage // the killmail of each accepted event
	hangAfter int
	hung      bool
	badSig    int
}

func newHookReceiver(secret string) *hookReceiver {
	r := &hookReceiver{secret: secret}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			EventID  uint64          `json:"event_id"`
			Killmail json.RawMessage `json:"killmail"`
		}
		if json.Unmarshal(body, &ev) != nil || req.Header.Get("X-Killfeed-Event-Id") != strconv.FormatUint(ev.EventID, 10) {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		if r.secret != "" && !hmac.Equal([]byte(req.Header.Get("X-Killfeed-Signature")), []byte(webhook.Sign(r.secret, body))) {
			r.badSig++
			r.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.hangAfter > 0 && len(r.got) == r.hangAfter {
			r.hung = true
			r.mu.Unlock()
			<-req.Context().Done() // the sender is gone
			return
		}
		r.got = append(r.got, ev.EventID)
		r.bodies = append(r.bodies, ev.Killmail)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	DeferCleanup(r.Close)
	return r
}

func (r *hookReceiver) ids() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *hookReceiver) hangAt(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hangAfter, r.hung = n, false
}

func (r *hookReceiver) hanging() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hung
}

// discordFake is a Discord webhook endpoint that records the killmail ids
// of the embeds it accepted and answers the first request 429 with
// retry_after; a request before the wait is over counts as early.
type discordFake struct {
	*httptest.Server
	mu       sync.Mutex
	ids      []int64
	colours  map[int64]int
	authors  map[int64]string
	titles   map[int64]string
	requests int
	until    time.Time
	early    int
}

func newDiscordFake() *discordFake {
	d := &discordFake{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m struct {
			Embeds []struct {
				URL    string `json:"url"`
				Color  int    `json:"color"`
				Title  string `json:"title"`
				Author struct {
					Name string `json:"name"`
				} `json:"author"`
			} `json:"embeds"`
		}
		body, _ := io.ReadAll(req.Body)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.requests++
		if time.Now().Before(d.until) {
			d.early++
		}
		if d.requests == 1 {
			d.until = time.Now().Add(500 * time.Millisecond)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"You are being rate limited.","retry_after":0.5,"global":false}`)
			return
		}
		if err := json.Unmarshal(body, &m); err != nil || len(m.Embeds) == 0 || len(m.Embeds) > 10 {
			http.Error(w, `{"code":50035}`, http.StatusBadRequest)
			return
		}
		for _, e := range m.Embeds {
			var id int64
			_, _ = fmt.Sscanf(e.URL, "https://zkillboard.com/kill/%d/", &id)
			d.ids = append(d.ids, id)
			if d.colours == nil {
				d.colours, d.authors, d.titles = map[int64]int{}, map[int64]string{}, map[int64]string{}
			}
			d.colours[id], d.authors[id], d.titles[id] = e.Color, e.Author.Name, e.Title
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	DeferCleanup(d.Close)
	return d
}

func (d *discordFake) killmailIDs() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ids)
}

// hookStatus is one entry of GET /api/webhooks.
type hookStatus struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	State     string `json:"state"`
	Position  uint64 `json:"position"`
	Lag       uint64 `json:"lag"`
	LastError string `json:"last_error"`
}

// webhookStates asks GET /api/webhooks with token.
func webhookStates(ctx context.Context, base, token string) map[string]hookStatus {
	GinkgoHelper()
	r := do(ctx, http.MethodGet, base+"/api/webhooks", nil, http.Header{"Authorization": {"bearer " + token}})
	Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
	var body struct {
		Webhooks []hookStatus `json:"webhooks"`
	}
	r.JSON(&body)
	out := map[string]hookStatus{}
	for _, s := range body.Webhooks {
		out[s.Name] = s
	}
	return out
}

// waitIdle waits until every named webhook is caught up.
func waitIdle(ctx context.Context, base, token string, names ...string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		st := webhookStates(ctx, base, token)
		for _, n := range names {
			g.Expect(st).To(HaveKeyWithValue(n, HaveField("State", webhook.StateIdle)))
		}
	}).WithContext(ctx).WithTimeout(20 * time.Second).Should(Succeed())
}

func writeHooks(path, content string) {
	GinkgoHelper()
	Expect(os.WriteFile(path, []byte(content), 0o600)).To(Succeed())
}

// ascendingRuns says whether ids go up, except where a run restarts
// (after a crash) at an id already seen.
func ascendingRuns(ids []uint64) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] && !slices.Contains(ids[:i], ids[i]) {
			return false
		}
	}
	return true
}

var _ = Describe("webhooks of the killfeed binary", func() {
	const token = "admin-s3cret"

	It("deliver what each filter matches, in order, through a 429 and two kill -9s, losing nothing", func(ctx SpecContext) {
		rcv := newHookReceiver("s3cret")
		disc := newDiscordFake()
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "webhooks.yaml")
		writeHooks(file, fmt.Sprintf(`webhooks:
  - name: everything
    url: %s/hook
    format: json
    secret: s3cret
    filter: {all: true}
  - name: jita-channel
    url: %s/api/webhooks/1/token
    format: discord
    filter:
      systems: [%d]
`, rcv.URL, disc.URL, jita))
		args := []string{"--storage", "disk", "--data-dir", filepath.Join(dir, "data"), "--r2z2=false",
			"--webhooks-file", file, "--admin-token", token, "--webhook-backoff-max", "500ms"}
		p := startProcess(nil, args...)
		waitIdle(ctx, p.URL, token, "everything", "jita-channel")

		rcv.hangAt(24) // the 25th is in flight when the process dies
		a, akills := insertKills(ctx, p.URL, jita, 10)
		b, _ := insertKills(ctx, p.URL, amarr, 10)
		c, ckills := insertKills(ctx, p.URL, jita, 10)
		all := slices.Concat(a, b, c)
		Eventually(rcv.hanging).WithContext(ctx).WithTimeout(20 * time.Second).Should(BeTrue())
		Expect(rcv.ids()).To(Equal(all[:24]))
		jitaKills := slices.Concat(akills, ckills)
		Eventually(disc.killmailIDs).WithContext(ctx).WithTimeout(20*time.Second).Should(Equal(jitaKills),
			"the Discord channel gets its filter's killmails, after waiting out the 429")

		st := webhookStates(ctx, p.URL, token)
		Expect(st["everything"]).To(And(HaveField("State", webhook.StateDelivering), HaveField("Position", all[23]),
			HaveField("Lag", uint64(6)), HaveField("URL", rcv.URL+"/…")))
		Expect(st["jita-channel"].URL).To(Equal(disc.URL+"/…"), "the token in a Discord URL is not shown")

		time.Sleep(pastOffsetFlush) // the offsets are on disk
		Expect(p.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(p.exited).WithTimeout(10 * time.Second).Should(BeClosed())
		rcv.hangAt(0)

		p = startProcess(nil, args...)
		Eventually(rcv.ids).WithContext(ctx).WithTimeout(20*time.Second).Should(Equal(all),
			"after the restart, the one in flight and the rest; nothing before it again")
		Consistently(disc.killmailIDs).WithTimeout(time.Second).Should(Equal(jitaKills), "the channel got nothing twice")

		// A kill -9 in the middle of a stream, with no pause for the offset
		// flush: every event arrives at least once, each run in order.
		more, _ := insertKills(ctx, p.URL, amarr, 40)
		Eventually(func() int { return len(rcv.ids()) }).WithContext(ctx).WithTimeout(20 * time.Second).Should(BeNumerically(">=", len(all)+10))
		Expect(p.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(p.exited).WithTimeout(10 * time.Second).Should(BeClosed())
		startProcess(nil, args...)
		want := slices.Concat(all, more)
		Eventually(func() []uint64 { return dedupeIDs(rcv.ids()) }).WithContext(ctx).WithTimeout(30 * time.Second).Should(Equal(want))
		Expect(ascendingRuns(rcv.ids())).To(BeTrue(), "%v", rcv.ids())
		rcv.mu.Lock()
		Expect(rcv.badSig).To(BeZero())
		rcv.mu.Unlock()
		disc.mu.Lock()
		Expect(disc.early).To(BeZero(), "no request before retry_after was over")
		disc.mu.Unlock()
	}, SpecTimeout(3*time.Minute))

	It("serve GET /api/webhooks only with --admin-token and its bearer token", func(ctx SpecContext) {
		rcv := newHookReceiver("")
		file := filepath.Join(GinkgoT().TempDir(), "webhooks.yaml")
		writeHooks(file, fmt.Sprintf("webhooks:\n  - {name: one, url: '%s/secret-path', format: json, secret: hush, filter: {all: true}}\n", rcv.URL))
		open := startProcess(nil, "--storage", "memory", "--r2z2=false", "--webhooks-file", file)
		Expect(get(ctx, open.URL+"/api/webhooks").Status).To(Equal(http.StatusNotFound), "no admin token: no admin route")

		p := startProcess(nil, "--storage", "memory", "--r2z2=false", "--webhooks-file", file, "--admin-token", token)
		r := get(ctx, p.URL+"/api/webhooks")
		Expect(r.Status).To(Equal(http.StatusUnauthorized))
		Expect(r.Error()).To(ContainSubstring("admin token"))
		r = do(ctx, http.MethodGet, p.URL+"/api/webhooks", nil, http.Header{"Authorization": {"Bearer wrong"}})
		Expect(r.Status).To(Equal(http.StatusUnauthorized))
		r = do(ctx, http.MethodGet, p.URL+"/api/webhooks", nil, http.Header{"Authorization": {"BEARER " + token}})
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(string(r.Body)).To(ContainSubstring(`"name":"one"`))
		Expect(string(r.Body)).NotTo(ContainSubstring("secret-path"))
		Expect(string(r.Body)).NotTo(ContainSubstring("hush"))
		Eventually(func() string { return webhookStates(ctx, p.URL, token)["one"].State }).WithContext(ctx).Should(Equal(webhook.StateIdle))

		m := get(ctx, p.URL+"/metrics")
		Expect(string(m.Body)).To(ContainSubstring(`killfeed_webhook_state{state="idle",webhook="one"} 1`))
		Expect(string(m.Body)).To(ContainSubstring(`killfeed_webhook_lag_events{webhook="one"} 0`))
	}, SpecTimeout(60*time.Second))

	It("are re-read on SIGHUP: a broken file keeps the running set, a good one applies", func(ctx SpecContext) {
		rcv := newHookReceiver("")
		file := filepath.Join(GinkgoT().TempDir(), "webhooks.yaml")
		one := fmt.Sprintf("webhooks:\n  - {name: one, url: '%s', format: json, filter: {all: true}}\n", rcv.URL)
		writeHooks(file, one)
		p := startProcess(nil, "--storage", "memory", "--r2z2=false", "--webhooks-file", file, "--admin-token", token)
		waitIdle(ctx, p.URL, token, "one")

		writeHooks(file, one+"  - {name: two, url: '"+rcv.URL+"', format: json, filter: {all: true}, extra: 1}\n")
		Expect(p.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		Eventually(p.stderr).WithTimeout(10 * time.Second).Should(gbytes.Say(`reload failed; the webhooks are unchanged.*webhooks\[1\] \(two\): unknown field \\"extra\\"`))
		Expect(webhookStates(ctx, p.URL, token)).To(HaveLen(1))
		ids, _ := insertKills(ctx, p.URL, jita, 2)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids), "the old set still delivers")

		writeHooks(file, fmt.Sprintf("webhooks:\n  - {name: two, url: '%s', format: json, filter: {systems: [%d]}}\n", rcv.URL, amarr))
		Expect(p.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		Eventually(p.stderr).WithTimeout(10 * time.Second).Should(gbytes.Say(`webhooks reloaded`))
		waitIdle(ctx, p.URL, token, "two")
		Expect(webhookStates(ctx, p.URL, token)).To(HaveLen(1))
		insertKills(ctx, p.URL, jita, 1)
		more, _ := insertKills(ctx, p.URL, amarr, 2)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(slices.Concat(ids, more)))
	}, SpecTimeout(60*time.Second))
})

var _ = Describe("webhook filters", func() {
	It("take the terms of GET /api/killfeed: each webhook gets exactly what its filter matches, a Discord embed coloured by the side its entity was on", func(ctx SpecContext) {
		const token = "admin"
		const alliance = 99010928 // a victim in some fixture killmails, an attacker in others
		rcv, victims := newHookReceiver(""), newHookReceiver("")
		disc := newDiscordFake()
		file := filepath.Join(GinkgoT().TempDir(), "webhooks.yaml")
		writeHooks(file, fmt.Sprintf(`webhooks:
  - {name: involved, url: '%s', format: json, filter: {alliances: [%d]}}
  - {name: losses, url: '%s', format: json, filter: {alliances: [%d], side: victim, systems: [%d]}}
  - {name: channel, url: '%s', format: discord, filter: {alliances: [%d]}}
`, rcv.URL, alliance, victims.URL, alliance, jita, disc.URL, alliance))
		p := startProcess(nil, "--storage", "memory", "--r2z2=false", "--webhooks-file", file, "--admin-token", token)
		waitIdle(ctx, p.URL, token, "involved", "losses", "channel")

		body := wsKillmails(jita, 40)
		ids := postKillmails(ctx, p.URL, body)
		moreBody := wsKillmails(amarr, 40)
		ids = append(ids, postKillmails(ctx, p.URL, moreBody)...)
		type facts struct {
			ID     int64 `json:"killmail_id"`
			System int64 `json:"solar_system_id"`
			Victim struct {
				Alliance int64 `json:"alliance_id"`
			} `json:"victim"`
			Attackers []struct {
				Alliance int64 `json:"alliance_id"`
			} `json:"attackers"`
		}
		var kms, more []facts
		Expect(json.Unmarshal(body, &kms)).To(Succeed())
		Expect(json.Unmarshal(moreBody, &more)).To(Succeed())
		kms = append(kms, more...)
		var involved, losses []uint64
		var channel []int64
		red := map[int64]bool{}
		for i, km := range kms {
			attacker := false
			for _, a := range km.Attackers {
				attacker = attacker || a.Alliance == alliance
			}
			victim := km.Victim.Alliance == alliance
			if victim || attacker {
				involved = append(involved, ids[i])
				channel = append(channel, km.ID)
				red[km.ID] = victim
			}
			if victim && km.System == jita {
				losses = append(losses, ids[i])
			}
		}
		Expect(losses).NotTo(BeEmpty())
		Expect(len(involved)).To(BeNumerically(">", len(losses)))
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(involved))
		Eventually(victims.ids).WithContext(ctx).Should(Equal(losses))
		Eventually(disc.killmailIDs).WithContext(ctx).Should(Equal(channel))
		disc.mu.Lock()
		defer disc.mu.Unlock()
		for id, loss := range red {
			if loss {
				Expect(disc.colours[id]).To(Equal(0xE74C3C), "killmail %d: a loss is red", id)
			} else {
				Expect(disc.colours[id]).To(Equal(0x2ECC71), "killmail %d: a kill is green", id)
			}
		}
	}, SpecTimeout(60*time.Second))
})

var _ = Describe("webhook deliveries with names", func() {
	It("carry the names ESI and the static data give: json in the killmail, Discord in the embed", func(ctx SpecContext) {
		esi := fakeesi.New(true)
		DeferCleanup(esi.Close)
		rcv := newHookReceiver("")
		disc := newDiscordFake()
		file := filepath.Join(GinkgoT().TempDir(), "webhooks.yaml")
		writeHooks(file, fmt.Sprintf("webhooks:\n  - {name: j, url: '%s', format: json, filter: {all: true}}\n  - {name: d, url: '%s', format: discord, filter: {all: true}}\n", rcv.URL, disc.URL))
		a := startKillfeed(app.Config{WebhooksFile: file, AdminToken: "t",
			Names: app.NamesConfig{ESI: true, URL: esi.URL, Wait: 10 * time.Second, Contact: "ops@example.org"}})
		waitIdle(ctx, a.URL(), "t", "j", "d")

		body, kms := namesKillmails(0, 4)
		ids := postKillmails(ctx, a.URL(), body)
		Eventually(rcv.ids).WithContext(ctx).Should(Equal(ids))
		rcv.mu.Lock()
		bodies := slices.Clone(rcv.bodies)
		rcv.mu.Unlock()
		for i, k := range kms {
			expectNamed(k.JSON, bodies[i], true)
		}
		Eventually(disc.killmailIDs).WithContext(ctx).Should(HaveLen(len(kms)))
		disc.mu.Lock()
		defer disc.mu.Unlock()
		for _, k := range kms {
			var v struct {
				Victim struct {
					Character int64 `json:"character_id"`
				} `json:"victim"`
			}
			Expect(json.Unmarshal(k.JSON, &v)).To(Succeed())
			if v.Victim.Character != 0 {
				Expect(disc.authors[k.ID]).To(MatchRegexp(`^Character %d \[C\d+\]`, v.Victim.Character))
			}
			Expect(disc.titles[k.ID]).NotTo(HavePrefix("Type "), "the ship is named")
			Expect(disc.titles[k.ID]).NotTo(HaveSuffix("System "), "the system is named")
		}
	}, SpecTimeout(60*time.Second))
})

var _ = DescribeTable("the binary refuses a bad webhooks file with a message naming the entry and field, and exit status 1",
	func(ctx SpecContext, content, mentions string) {
		file := filepath.Join(GinkgoT().TempDir(), "webhooks.yaml")
		if content != "" {
			writeHooks(file, content)
		}
		cmd := exec.CommandContext(ctx, killfeedBinary(), "--listen", "127.0.0.1:0", "--storage", "memory", "--webhooks-file", file)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		Expect(err).To(BeAssignableToTypeOf(exit), "%s", out)
		Expect(err.(*exec.ExitError).ExitCode()).To(Equal(1), "%s", out)
		Expect(string(out)).To(ContainSubstring(mentions))
		Expect(string(out)).NotTo(ContainSubstring("killfeed listening"))
	},
	Entry("an unknown format", "webhooks:\n  - {name: a, url: 'https://x.example', format: slack, filter: {all: true}}\n",
		`webhooks[0] (a): format: "slack" is not discord or json`),
	Entry("an unknown filter term", "webhooks:\n  - {name: a, url: 'https://x.example', format: json, filter: {colour: red}}\n",
		`webhooks[0] (a): filter: colour: not a filter term`),
	Entry("an unknown side", "webhooks:\n  - {name: a, url: 'https://x.example', format: json, filter: {alliances: [1], side: sideways}}\n",
		`webhooks[0] (a): filter: side: "sideways" is not any, victim or attacker`),
	Entry("an unknown region", "webhooks:\n  - {name: a, url: 'https://x.example', format: json, filter: {regions: [1]}}\n",
		`webhooks[0] (a): filter: regions: 1 is not a known region id`),
	Entry("a missing file", "", "webhooks-file: webhooks file: open"),
)

// dedupeIDs drops repeats, keeping the first of each.
func dedupeIDs(ids []uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
