package specs_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/app"
)

var _ = Describe("what HTTP clients expect", func() {
	It("answers HEAD on /healthz and /readyz", func(ctx SpecContext) {
		base := startKillfeed(app.Config{}).URL()
		for _, path := range []string{"/healthz", "/readyz"} {
			r := do(ctx, http.MethodHead, base+path, nil, nil)
			Expect(r.Status).To(Equal(http.StatusOK), path)
			Expect(r.Body).To(BeEmpty())
		}
	}, SpecTimeout(30*time.Second))

	It("compresses HTTP answers for a client that asks (Accept-Encoding: gzip), and not websockets", func(ctx SpecContext) {
		base := startKillfeed(app.Config{}).URL()
		ids := wsInsert(ctx, base, jita, 20)
		u := pollURL(base, "/api/killfeed", "zipped", []int64{jita})
		r := do(ctx, http.MethodGet, u, nil, http.Header{"Accept-Encoding": {"gzip"}})
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(r.Header.Get("Content-Encoding")).To(Equal("gzip"))
		zr, err := gzip.NewReader(bytes.NewReader(r.Body))
		Expect(err).NotTo(HaveOccurred())
		plain, err := io.ReadAll(zr)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(r.Body)).To(BeNumerically("<", len(plain)/2))
		var p pollAnswer
		Expect(json.Unmarshal(plain, &p)).To(Succeed())
		Expect(p.IDs()).To(Equal(ids))
		// Without asking: plain JSON.
		r = do(ctx, http.MethodGet, pollURL(base, "/api/killfeed", "plain", []int64{jita}), nil, http.Header{"Accept-Encoding": {"identity"}})
		Expect(r.Header.Get("Content-Encoding")).To(BeEmpty())
		r.JSON(&p)
		Expect(p.IDs()).To(Equal(ids))
		// A websocket handshake that says gzip is still a websocket.
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ws",
			&websocket.DialOptions{HTTPHeader: http.Header{"Accept-Encoding": {"gzip"}}})
		Expect(err).NotTo(HaveOccurred())
		ws := &wsClient{c: c}
		DeferCleanup(func() { _ = c.CloseNow() })
		ws.pingPong(ctx)
	}, SpecTimeout(30*time.Second))

	It("sends CORS headers to the origins of --cors-origins only", func(ctx SpecContext) {
		base := startKillfeed(app.Config{CORSOrigins: []string{"*.example.com"}}).URL()
		u := pollURL(base, "/api/killfeed", "cors", []int64{jita})
		r := do(ctx, http.MethodGet, u, nil, http.Header{"Origin": {"https://map.example.com"}})
		Expect(r.Status).To(Equal(http.StatusOK))
		Expect(r.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://map.example.com"))
		r = do(ctx, http.MethodGet, u, nil, http.Header{"Origin": {"https://evil.test"}})
		Expect(r.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
		// A preflight for a keyed request.
		r = do(ctx, http.MethodOptions, u, nil, http.Header{"Origin": {"https://map.example.com"},
			"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization"}})
		Expect(r.Status).To(Equal(http.StatusNoContent))
		Expect(r.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://map.example.com"))
		Expect(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))).To(ContainSubstring("authorization"))
		// Without --cors-origins, none.
		plain := startKillfeed(app.Config{}).URL()
		r = do(ctx, http.MethodGet, pollURL(plain, "/api/killfeed", "cors", []int64{jita}), nil, http.Header{"Origin": {"https://map.example.com"}})
		Expect(r.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
	}, SpecTimeout(30*time.Second))

	It("warns at start when the read keys file holds no key", func(ctx SpecContext) {
		keys := filepath.Join(GinkgoT().TempDir(), "keys")
		Expect(os.WriteFile(keys, []byte("# nobody yet\n\n"), 0o600)).To(Succeed())
		logs := gbytes.NewBuffer()
		startKillfeed(app.Config{ReadKeysFile: keys, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		Expect(string(logs.Contents())).To(ContainSubstring(`level=WARN msg="the read keys file holds no key: every read request is refused until keys are added and killfeed reloads (SIGHUP)" file=` + keys))
	}, SpecTimeout(30*time.Second))

	It("has the dashboard use the key of its own ?key= when read keys are on", func(sctx SpecContext) {
		ctx := startBrowser()
		keys := filepath.Join(GinkgoT().TempDir(), "keys")
		writeKeys(keys, "dash-key")
		kf := startKillfeed(app.Config{ReadKeysFile: keys})
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		Expect(chromedp.Do(ctx,
			chromedp.Navigate(kf.URL()+"/?key=dash-key#systems=30000142"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		)).To(Succeed())
		Eventually(connAttr).WithContext(ctx).WithTimeout(dashWait).WithArguments("state").Should(Equal("live"))
		ids, _ := dashInsert(sctx, kf.URL(), jita, 2)
		Eventually(feedIDs).WithContext(ctx).WithTimeout(dashWait).Should(Equal(newestFirst(ids)))
	}, SpecTimeout(120*time.Second))
})
