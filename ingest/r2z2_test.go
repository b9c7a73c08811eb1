package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	xrate "golang.org/x/time/rate"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/killmail"
)

// fakeR2Z2 serves sequence.json and {seq}.json. Before a file's body, it
// answers the scripted statuses of that sequence, one per request.
type fakeR2Z2 struct {
	*httptest.Server
	mu       sync.Mutex
	sequence uint64
	files    map[uint64]string
	script   map[uint64][]int
	slow     map[uint64]bool  // first request hangs past the client's timeout
	hits     map[uint64][]int // statuses answered, by sequence
}

func newFakeR2Z2() *fakeR2Z2 {
	f := &fakeR2Z2{files: map[uint64]string{}, script: map[uint64][]int{},
		slow: map[uint64]bool{}, hits: map[uint64][]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	DeferCleanup(f.Close)
	return f
}

func (f *fakeR2Z2) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	name := strings.TrimPrefix(r.URL.Path, "/ephemeral/")
	if name == "sequence.json" {
		fmt.Fprintf(w, `{"sequence":%d}`, f.sequence)
		f.mu.Unlock()
		return
	}
	seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64)
	if err != nil {
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if f.slow[seq] {
		f.slow[seq] = false
		f.hits[seq] = append(f.hits[seq], 0)
		f.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	code := http.StatusOK
	if s := f.script[seq]; len(s) > 0 {
		code, f.script[seq] = s[0], s[1:]
	}
	body, ok := f.files[seq]
	if code == http.StatusOK && !ok {
		code = http.StatusNotFound
	}
	f.hits[seq] = append(f.hits[seq], code)
	f.mu.Unlock()
	switch code {
	case http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(code)
	default:
		w.WriteHeader(code)
	}
}

func (f *fakeR2Z2) add(seq uint64, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[seq] = body
}

func (f *fakeR2Z2) okHits(seq uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.hits[seq] {
		if c == http.StatusOK {
			n++
		}
	}
	return n
}

func (f *fakeR2Z2) hitsOf(seq uint64) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.hits[seq]...)
}

// r2z2File wraps an ESI killmail the way R2Z2 does.
func r2z2File(seq uint64, esi []byte) string {
	km := parse(esi)
	return fmt.Sprintf(`{"killmail_id":%d,"hash":"abc","esi":%s,"zkb":{"totalValue":1},"uploaded_at":1,"sequence_id":%d}`,
		km.ID, esi, seq)
}

func runPoller(p *ingest.R2Z2) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(p.Run(ctx)).To(Succeed())
	}()
	stop = func() { cancel(); <-done }
	DeferCleanup(stop)
	return stop
}

var _ = Describe("R2Z2 poller", func() {
	const first = 1000
	var (
		fake  *fakeR2Z2
		svc   *actors.Service
		lines [][]byte
		cfg   ingest.R2Z2Config
	)
	BeforeEach(func() {
		fake = newFakeR2Z2()
		svc = startService()
		lines = fixtureLines()
		cfg = ingest.R2Z2Config{
			URL: fake.URL + "/ephemeral", Idle: 10 * time.Millisecond, Rate: 50,
			Timeout: 200 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
			Logger: testLogger(),
		}
	})

	It("stores every valid file once, in sequence order, through gaps, faults and bad files, and resumes after a restart",
		func(ctx SpecContext) {
			const n = 30
			fake.sequence = first
			var want []killmail.Killmail
			bad := map[uint64]string{
				first + 20: `{"killmail_id": 1, "esi": {"attackers": [`, // not JSON
				first + 21: `{"killmail_id": 2, "esi": {}}`,             // no ESI fields
			}
			late := map[uint64]bool{first + 5: true, first + 12: true}
			for i := range uint64(n) {
				seq := first + i
				if b, ok := bad[seq]; ok {
					fake.add(seq, b)
					continue
				}
				if !late[seq] {
					fake.add(seq, r2z2File(seq, lines[i]))
				}
				want = append(want, parse(lines[i]))
			}
			fake.script[first+8] = []int{500, 502, 503, 500}
			fake.script[first+10] = []int{429}
			fake.slow[first+15] = true
			systems := systemsOf(want...)

			p, err := ingest.NewR2Z2(svc, cfg)
			Expect(err).NotTo(HaveOccurred())
			stop := runPoller(p)

			// The gaps 404 for a while, then appear.
			Eventually(func() int { return int(p.Stats().NotYet) }).Should(BeNumerically(">=", 3))
			for seq := range late {
				fake.add(seq, r2z2File(seq, lines[seq-first]))
			}
			Eventually(func() uint64 { v, _ := svc.Cursor(ingest.R2Z2Cursor); return v }).
				WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal(uint64(first + n - 1)))

			ids := make([]int64, len(want))
			for i, km := range want {
				ids[i] = km.ID
			}
			Expect(storedIDs(ctx, svc, systems)).To(Equal(ids))
			st := p.Stats()
			Expect(st.Inserted).To(Equal(int64(len(want))))
			Expect(st.Skipped).To(Equal(int64(2)))
			Expect(st.Faults).To(BeNumerically(">=", 6)) // 4 5xx, a 429, a timeout
			for i := range uint64(n) {
				Expect(fake.okHits(first+i)).To(Equal(1), "sequence %d fetched once", first+i)
			}
			// The 429's Retry-After (1 s) was honoured.
			Expect(fake.hitsOf(first + 10)).To(Equal([]int{429, 200}))

			// Restart: resume right after the stored cursor.
			stop()
			more := parse(lines[n])
			fake.add(first+n, r2z2File(first+n, lines[n]))
			p2, err := ingest.NewR2Z2(svc, cfg)
			Expect(err).NotTo(HaveOccurred())
			runPoller(p2)
			Eventually(func() uint64 { v, _ := svc.Cursor(ingest.R2Z2Cursor); return v }).
				WithContext(ctx).Should(Equal(uint64(first + n)))
			Expect(storedIDs(ctx, svc, systemsOf(append(want, more)...))).To(Equal(append(ids, more.ID)))
			for i := range uint64(n + 1) {
				Expect(fake.okHits(first+i)).To(Equal(1), "sequence %d fetched once", first+i)
			}
			Eventually(func() int64 { return p2.Stats().Files }).WithContext(ctx).Should(Equal(int64(1)))
		}, SpecTimeout(30*time.Second))

	It("starts at --r2z2-start when no cursor is stored, else at sequence.json", func(ctx SpecContext) {
		fake.sequence = first + 3
		for i := range uint64(5) {
			fake.add(first+i, r2z2File(first+i, lines[i]))
		}
		cfg.Start = first + 1
		p, err := ingest.NewR2Z2(svc, cfg)
		Expect(err).NotTo(HaveOccurred())
		stop := runPoller(p)
		Eventually(func() uint64 { v, _ := svc.Cursor(ingest.R2Z2Cursor); return v }).
			WithContext(ctx).Should(Equal(uint64(first + 4)))
		stop()
		Expect(p.Stats().Inserted).To(Equal(int64(4)))

		other := startService()
		cfg.Start = 0
		p, err = ingest.NewR2Z2(other, cfg)
		Expect(err).NotTo(HaveOccurred())
		runPoller(p)
		Eventually(func() uint64 { v, _ := other.Cursor(ingest.R2Z2Cursor); return v }).
			WithContext(ctx).Should(Equal(uint64(first + 4)))
		// The counter moves just after the write that stored the cursor.
		Eventually(func() int64 { return p.Stats().Inserted }).WithContext(ctx).Should(Equal(int64(2)))
	}, SpecTimeout(10*time.Second))

	It("never sends more than Rate requests in any one-second window", func(ctx SpecContext) {
		const rate = 5
		fake.sequence = first
		for i := range uint64(12) {
			fake.add(first+i, r2z2File(first+i, lines[i]))
		}
		rec := &recordingTransport{next: http.DefaultTransport}
		cfg.Client = &http.Client{Transport: rec}
		cfg.Rate = rate
		cfg.Idle = time.Millisecond // after the last file, 404s as fast as allowed
		p, err := ingest.NewR2Z2(svc, cfg)
		Expect(err).NotTo(HaveOccurred())
		var lim *reservingLimiter
		ingest.WrapR2Z2Limiter(p, func(l *xrate.Limiter) ingest.Waiter {
			// A token bucket with burst 1 spaces its grants by 1/Rate.
			Expect(l.Limit()).To(Equal(xrate.Limit(rate)))
			Expect(l.Burst()).To(Equal(1))
			lim = &reservingLimiter{lim: l}
			return lim
		})
		runPoller(p)
		Eventually(rec.count).WithContext(ctx).Should(BeNumerically(">=", 3*rate))
		// The times the limiter granted, from its own arithmetic: they do
		// not depend on how fast this machine runs the poller.
		grants, sent := lim.grants(), rec.times()
		Expect(len(grants)).To(BeNumerically(">=", len(sent)), "every request waited for a grant")
		for i := range sent {
			// The poller is sequential (wait, then send): request i went
			// out after grant i, never before it.
			Expect(sent[i]).NotTo(BeTemporally("<", grants[i]), "request %d", i)
		}
		for i := 0; i+rate < len(grants); i++ {
			// rate+1 grants never fit in one second (a microsecond allows
			// for the limiter's floating-point token arithmetic)
			Expect(grants[i+rate].Sub(grants[i])).To(BeNumerically(">=", time.Second-time.Microsecond),
				"grants %d…%d", i, i+rate)
		}
	}, SpecTimeout(15*time.Second))

	It("rejects invalid configuration by flag name", func() {
		_, err := ingest.NewR2Z2(svc, ingest.R2Z2Config{URL: "ftp://x", Rate: -1})
		Expect(err).To(MatchError(ingest.ErrConfig))
		Expect(err.Error()).To(And(ContainSubstring("r2z2-url"), ContainSubstring("r2z2-rate")))
	})
})

// recordingTransport records when the client sends each request.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	ts   []time.Time
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.ts = append(t.ts, time.Now())
	t.mu.Unlock()
	return t.next.RoundTrip(r)
}

func (t *recordingTransport) times() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Time(nil), t.ts...)
}

func (t *recordingTransport) count() int { return len(t.times()) }

// reservingLimiter waits as rate.Limiter.Wait does, and records when the
// limiter granted each wait: the time its reservation lets the caller act.
type reservingLimiter struct {
	lim *xrate.Limiter
	mu  sync.Mutex
	at  []time.Time
}

func (l *reservingLimiter) Wait(ctx context.Context) error {
	now := time.Now()
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("reservingLimiter: burst exceeded")
	}
	delay := r.DelayFrom(now)
	l.mu.Lock()
	l.at = append(l.at, now.Add(delay))
	l.mu.Unlock()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

func (l *reservingLimiter) grants() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}
