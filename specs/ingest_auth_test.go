package specs_test

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

var _ = Describe("who may POST killmails", func() {
	It("without --ingest-token, only loopback clients as resolved through the trusted proxies, said at start and in the 403", func(ctx SpecContext) {
		logs := gbytes.NewBuffer()
		kf := startKillfeed(app.Config{
			Limits: transport.LimitsConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
		})
		Expect(logs).To(gbytes.Say("ingest open to loopback clients only"))
		url := kf.URL() + "/api/killmails"
		lines := fixture.Lines()
		// Through a trusted proxy, for a client elsewhere: refused.
		r := do(ctx, http.MethodPost, url, lines[0], http.Header{"X-Forwarded-For": {"203.0.113.7"}})
		Expect(r.Status).To(Equal(http.StatusForbidden))
		Expect(r.Error()).To(HavePrefix("Authorization: ingest without --ingest-token is open to loopback clients only, and this request comes from 203.0.113.7"))
		r = do(ctx, http.MethodPost, url, lines[0], http.Header{"X-Forwarded-For": {"2001:db8::1, 127.0.0.1"}})
		Expect(r.Status).To(Equal(http.StatusForbidden))
		Expect(kf.Actors().Stats().Events).To(BeZero())
		// Through the proxy for a loopback client, and directly: stored.
		Expect(do(ctx, http.MethodPost, url, lines[0], http.Header{"X-Forwarded-For": {"127.0.0.1"}}).Status).To(Equal(http.StatusCreated))
		Expect(post(ctx, url, lines[1]).Status).To(Equal(http.StatusCreated))
	}, SpecTimeout(30*time.Second))

	It("with --ingest-token, anyone holding it, the Bearer scheme in any case (RFC 9110)", func(ctx SpecContext) {
		kf := startKillfeed(app.Config{IngestToken: "s3cret"})
		url := kf.URL() + "/api/killmails"
		lines := fixture.Lines()
		for i, auth := range []string{"Bearer s3cret", "bearer s3cret", "BEARER  s3cret"} {
			r := do(ctx, http.MethodPost, url, lines[i], http.Header{"Authorization": {auth}, "X-Forwarded-For": {"203.0.113.7"}})
			Expect(r.Status).To(Equal(http.StatusCreated), auth)
		}
		r := do(ctx, http.MethodPost, url, lines[5], http.Header{"Authorization": {"Basic s3cret"}})
		Expect(r.Status).To(Equal(http.StatusUnauthorized))
		Expect(r.Header.Get("WWW-Authenticate")).To(Equal(`Bearer realm="killfeed"`))
	}, SpecTimeout(30*time.Second))
})
