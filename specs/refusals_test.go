package specs_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/transport"
)

var _ = Describe("refusals", func() {
	var base string
	BeforeEach(func() {
		base = startKillfeed(app.Config{Websocket: transport.WebsocketConfig{AllowedOrigins: []string{"*.example.com"}}}).URL()
	})

	It("answers a websocket handshake from an origin not allowed with a JSON 403 naming it", func(ctx SpecContext) {
		for _, path := range []string{"/api/ws", "/socket/websocket?vsn=2.0.0", "/websocket/"} {
			_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path,
				&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.test"}}})
			Expect(err).To(HaveOccurred())
			Expect(res.StatusCode).To(Equal(http.StatusForbidden))
			Expect(res.Header.Get("Content-Type")).To(HavePrefix("application/json"))
			b, err := io.ReadAll(res.Body)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).To(MatchJSON(`{"error":"Origin: \"https://evil.test\" is not allowed for this host (--ws-allowed-origins)"}`))
		}
		// An allowed origin, and a client that sends none, are served.
		for _, h := range []http.Header{{"Origin": {"https://map.example.com"}}, nil} {
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ws", &websocket.DialOptions{HTTPHeader: h})
			Expect(err).NotTo(HaveOccurred())
			Expect(c.CloseNow()).To(Succeed())
		}
	}, SpecTimeout(30*time.Second))

	It("says when to come back on every 429, the busy RedisQ queue too", func(ctx SpecContext) {
		var wg sync.WaitGroup
		wg.Go(func() {
			defer GinkgoRecover()
			listenServed(ctx, listenURL(base, "/listen.php", "busy", "ttw", "10"))
		})
		Eventually(func(g Gomega) {
			r := do(ctx, http.MethodGet, listenURL(base, "/listen.php", "busy", "ttw", "1"), nil, nil)
			g.Expect(r.Status).To(Equal(http.StatusTooManyRequests))
			g.Expect(r.Header.Get("Retry-After")).To(Equal("1"))
		}).WithContext(ctx).Should(Succeed())
		insertZKB(ctx, base, jita, 1, true)
		wg.Wait()
	}, SpecTimeout(30*time.Second))

	It("writes error texts as they are, without HTML escapes", func(ctx SpecContext) {
		r := post(ctx, base+"/api/killmails", []byte(`<killmail/>`))
		Expect(r.Status).To(Equal(http.StatusBadRequest))
		Expect(string(r.Body)).To(ContainSubstring(`invalid character '<' looking for beginning of value`))
		Expect(string(r.Body)).NotTo(ContainSubstring(`\u003c`))
		// And so do the websocket protocols' error frames.
		for _, tc := range []struct{ path, frame string }{
			{"/api/ws", `{"type":"<b>"}`},
			{"/websocket/", `{"action":"<b>"}`},
			{"/socket/websocket?vsn=2.0.0", `["1","1","<b>","phx_join",{}]`},
		} {
			c := dialWS(ctx, base, tc.path)
			Expect(c.Write(ctx, websocket.MessageText, []byte(tc.frame))).To(Succeed())
			_, b, err := c.Read(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).To(ContainSubstring(`<b>`), tc.path)
			Expect(string(b)).NotTo(ContainSubstring(`\u003c`), tc.path)
		}
	}, SpecTimeout(30*time.Second))
})
