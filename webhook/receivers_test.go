package webhook_test

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/webhook"
)

// behaviour is how a fake receiver answers its n-th request (from 0):
// "" or "ok" accepts it; "500", "404" answer so; "hang" holds it until
// the receiver is released (or the client gives up); "vanish" drops the
// connection without an answer.
type behaviour func(n int) string

// jsonDelivery is one request a jsonReceiver accepted.
type jsonDelivery struct {
	EventID  uint64          `json:"event_id"`
	SystemID int64           `json:"system_id"`
	Killmail json.RawMessage `json:"killmail"`
	Missed   bool            `json:"missed"`
}

// jsonReceiver is a json webhook endpoint that checks every request's
// headers and signature.
type jsonReceiver struct {
	*httptest.Server
	secret  string
	act     behaviour
	release chan struct{}

	mu        sync.Mutex
	requests  int
	got       []jsonDelivery
	badSig    int
	badHeader []string
}

func newJSONReceiver(secret string, act behaviour) *jsonReceiver {
	r := &jsonReceiver{secret: secret, act: act, release: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	DeferCleanup(func() {
		r.unblock()
		r.Close()
	})
	return r
}

func (r *jsonReceiver) unblock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.release:
	default:
		close(r.release)
	}
}

func (r *jsonReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := r.requests
	r.requests++
	r.mu.Unlock()
	act := ""
	if r.act != nil {
		act = r.act(n)
	}
	switch act {
	case "", "ok":
	case "hang":
		select {
		case <-r.release:
		case <-req.Context().Done():
			return
		}
	case "vanish":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	default:
		code, _ := strconv.Atoi(act)
		http.Error(w, "fake "+act, code)
		return
	}
	var d jsonDelivery
	problem := ""
	switch {
	case req.Method != http.MethodPost:
		problem = "method " + req.Method
	case req.Header.Get("Content-Type") != "application/json":
		problem = "content type " + req.Header.Get("Content-Type")
	case json.Unmarshal(body, &d) != nil:
		problem = "body does not decode"
	case req.Header.Get(webhook.HeaderEventID) != strconv.FormatUint(d.EventID, 10):
		problem = "event id header " + req.Header.Get(webhook.HeaderEventID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if problem != "" {
		r.badHeader = append(r.badHeader, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	if r.secret != "" {
		want := webhook.Sign(r.secret, body)
		if !hmac.Equal([]byte(req.Header.Get(webhook.HeaderSignature)), []byte(want)) {
			r.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	r.got = append(r.got, d)
	w.WriteHeader(http.StatusNoContent)
}

// ids are the event ids accepted, in order.
func (r *jsonReceiver) ids() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.got))
	for i, d := range r.got {
		out[i] = d.EventID
	}
	return out
}

func (r *jsonReceiver) deliveries() []jsonDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]jsonDelivery(nil), r.got...)
}

// problems are the requests refused for their signature and for
// anything else.
func (r *jsonReceiver) problems() (badSig int, badHeader []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSig, append([]string(nil), r.badHeader...)
}

func (r *jsonReceiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// discordMessage is what the fake Discord decodes.
type discordMessage struct {
	Content string         `json:"content"`
	Embeds  []discordEmbed `json:"embeds"`
}

type discordEmbed struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Description string `json:"description"`
	Color       int    `json:"color"`
	Timestamp   string `json:"timestamp"`
	Author      *struct {
		Name    string `json:"name"`
		URL     string `json:"url"`
		IconURL string `json:"icon_url"`
	} `json:"author"`
	Thumbnail *struct {
		URL string `json:"url"`
	} `json:"thumbnail"`
	Fields []struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Inline bool   `json:"inline"`
	} `json:"fields"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
}

// fakeDiscord is a Discord webhook endpoint: it refuses (400) a message
// over any embed limit, and rate-limits like Discord: a bucket of
// `bucket` requests per `window`, announced with X-RateLimit-Remaining and
// X-RateLimit-Reset-After; a request into an empty bucket gets a 429 with
// retry_after and counts as early (a client that honours the headers
// sends none).
type fakeDiscord struct {
	*httptest.Server
	bucket int
	window time.Duration

	mu        sync.Mutex
	remaining int
	reset     time.Time
	messages  []discordMessage
	raw       [][]byte
	violation []string
	early     int
	limited   int
	act       behaviour
	requests  int
}

func newFakeDiscord(bucket int, window time.Duration, act behaviour) *fakeDiscord {
	d := &fakeDiscord{bucket: bucket, window: window, remaining: bucket, act: act}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	DeferCleanup(d.Close)
	return d
}

func (d *fakeDiscord) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.requests
	d.requests++
	now := time.Now()
	if now.After(d.reset) {
		d.remaining, d.reset = d.bucket, now.Add(d.window)
	}
	resetAfter := secs(d.reset.Sub(now))
	if d.remaining == 0 {
		d.early++
		d.tooMany(w, d.reset.Sub(now))
		return
	}
	if d.act != nil && d.act(n) == "503" {
		http.Error(w, "fake 503", http.StatusServiceUnavailable)
		return
	}
	if d.act != nil && d.act(n) == "429" { // a 429 out of the blue (another bucket, say)
		d.limited++
		d.reset, d.remaining = now.Add(d.window), 0
		d.tooMany(w, d.window)
		return
	}
	d.remaining--
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(d.bucket))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	w.Header().Set("X-RateLimit-Reset-After", resetAfter)
	var m discordMessage
	if err := json.Unmarshal(body, &m); err != nil {
		d.refuse(w, "body: "+err.Error())
		return
	}
	if p := embedProblem(m); p != "" {
		d.refuse(w, p)
		return
	}
	d.messages = append(d.messages, m)
	d.raw = append(d.raw, body)
	w.WriteHeader(http.StatusNoContent)
}

func (d *fakeDiscord) tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset-After", secs(wait))
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, `{"message":"You are being rate limited.","retry_after":%s,"global":false}`, secs(wait))
}

// secs writes d in seconds to the millisecond, rounded up as Discord does,
// so that a client waiting that long is never early.
func secs(d time.Duration) string {
	return strconv.FormatFloat(math.Ceil(float64(d)/float64(time.Millisecond))/1000, 'f', 3, 64)
}

func (d *fakeDiscord) refuse(w http.ResponseWriter, problem string) {
	d.violation = append(d.violation, problem)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"code":50035,"message":%q}`, problem)
}

// embedProblem says which Discord limit m breaks ("" when none).
func embedProblem(m discordMessage) string {
	l := utf8.RuneCountInString
	if m.Content == "" && len(m.Embeds) == 0 {
		return "empty message"
	}
	if l(m.Content) > 2000 {
		return "content over 2000"
	}
	if len(m.Embeds) > 10 {
		return "more than 10 embeds"
	}
	total := 0
	for i, e := range m.Embeds {
		switch {
		case l(e.Title) > 256:
			return fmt.Sprintf("embeds[%d].title over 256", i)
		case l(e.Description) > 4096:
			return fmt.Sprintf("embeds[%d].description over 4096", i)
		case len(e.Fields) > 25:
			return fmt.Sprintf("embeds[%d]: more than 25 fields", i)
		case e.Footer != nil && l(e.Footer.Text) > 2048:
			return fmt.Sprintf("embeds[%d].footer over 2048", i)
		case e.Author != nil && l(e.Author.Name) > 256:
			return fmt.Sprintf("embeds[%d].author over 256", i)
		}
		if e.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
				return fmt.Sprintf("embeds[%d].timestamp: %v", i, err)
			}
		}
		total += l(e.Title) + l(e.Description)
		if e.Footer != nil {
			total += l(e.Footer.Text)
		}
		if e.Author != nil {
			total += l(e.Author.Name)
		}
		for j, f := range e.Fields {
			if l(f.Name) > 256 || l(f.Value) > 1024 || f.Name == "" || f.Value == "" {
				return fmt.Sprintf("embeds[%d].fields[%d] empty or over 256/1024", i, j)
			}
			total += l(f.Name) + l(f.Value)
		}
	}
	if total > 6000 {
		return "embeds over 6000 characters together"
	}
	return ""
}

// killmailIDs are the killmail ids of the embeds received, in order
// (from each embed's zKillboard url).
func (d *fakeDiscord) killmailIDs() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int64
	for _, m := range d.messages {
		for _, e := range m.Embeds {
			var id int64
			_, _ = fmt.Sscanf(e.URL, "https://zkillboard.com/kill/%d/", &id)
			out = append(out, id)
		}
	}
	return out
}

func (d *fakeDiscord) snapshot() (messages []discordMessage, violations []string, early, limited int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]discordMessage(nil), d.messages...), append([]string(nil), d.violation...), d.early, d.limited
}

var _ = Describe("the fake Discord", func() {
	It("refuses a message over a limit", func() {
		long := make([]rune, 257)
		for i := range long {
			long[i] = 'x'
		}
		Expect(embedProblem(discordMessage{Embeds: []discordEmbed{{Title: string(long)}}})).To(ContainSubstring("title"))
		Expect(embedProblem(discordMessage{Embeds: make([]discordEmbed, 11)})).To(ContainSubstring("10 embeds"))
		big := discordEmbed{Description: string(long[:200])}
		for range 4 {
			big.Description += big.Description
		}
		Expect(embedProblem(discordMessage{Embeds: []discordEmbed{big, big}})).To(ContainSubstring("6000"))
	})
})
