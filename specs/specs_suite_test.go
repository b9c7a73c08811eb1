// Package specs_test holds end-to-end specs: each starts the real service
// in-process on a loopback port and talks to it over HTTP, websockets or the
// Go API.
package specs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/app"
)

func TestSpecs(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "killfeed specs")
}

// leakBaseline ignores the goroutines running before the first spec (the
// test binary's and Ginkgo's own). Taken in AfterSuite itself, IgnoreCurrent
// would ignore the very goroutines the check is looking for.
var leakBaseline goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	removeBinary()
	// Every service the specs started was shut down: nothing may linger.
	Eventually(func() error {
		return goleak.Find(leakBaseline,
			// http.Client keep-alive connections of the specs' own clients
			// (a reader parked in the poller has readLoop below its top).
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		)
	}).WithTimeout(10 * time.Second).Should(Succeed())
})

// startKillfeed starts the real service on 127.0.0.1:0 with the memory
// backend unless cfg says otherwise, and shuts it down after the spec.
func startKillfeed(cfg app.Config) *app.App {
	GinkgoHelper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Storage == "" {
		cfg.Storage = app.StorageMemory
	}
	if cfg.MinRetention == 0 {
		// Specs of retention expect what every client read to go at the
		// next GC; the floor has specs of its own that set it.
		cfg.MinRetention = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := app.Start(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(a.Shutdown(ctx)).To(Succeed())
	}, NodeTimeout(20*time.Second))
	return a
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r response) JSON(v any) {
	GinkgoHelper()
	Expect(json.Unmarshal(r.Body, v)).To(Succeed(), "body: %s", r.Body)
}

// Error is the "error" field of a JSON error body.
func (r response) Error() string {
	GinkgoHelper()
	var e struct {
		Error string `json:"error"`
	}
	r.JSON(&e)
	return e.Error
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

func do(ctx context.Context, method, u string, body []byte, header http.Header) response {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func get(ctx context.Context, u string) response {
	GinkgoHelper()
	return do(ctx, http.MethodGet, u, nil, nil)
}

func post(ctx context.Context, u string, body []byte) response {
	GinkgoHelper()
	return do(ctx, http.MethodPost, u, body, http.Header{"Content-Type": {"application/json"}})
}

// pollURL builds /api/killfeed (or /next) query URLs.
func pollURL(base, path, client string, systems []int64, extra ...string) string {
	q := url.Values{}
	q.Set("client_id", client)
	for _, s := range systems {
		q.Add("systems[]", itoa(s))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return base + path + "?" + q.Encode()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// pollAnswer is the body of GET /api/killfeed.
type pollAnswer struct {
	Events []struct {
		EventID  uint64          `json:"event_id"`
		SystemID int64           `json:"system_id"`
		Killmail json.RawMessage `json:"killmail"`
	} `json:"events"`
	Missed        bool   `json:"missed"`
	OldestEventID uint64 `json:"oldest_event_id"`
	Head          uint64 `json:"head"`
}

func (p pollAnswer) IDs() []uint64 {
	out := []uint64{}
	for _, e := range p.Events {
		out = append(out, e.EventID)
	}
	return out
}
