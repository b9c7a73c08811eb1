package specs_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
)

// uniqueKillmails returns n real killmails (the fixture, cycled) with
// killmail ids from base up, as request bodies.
func uniqueKillmails(base int64, n int) [][]byte {
	GinkgoHelper()
	lines := fixture.Lines()
	out := make([][]byte, n)
	for i := range out {
		var obj map[string]json.RawMessage
		Expect(json.Unmarshal(lines[i%len(lines)], &obj)).To(Succeed())
		obj["killmail_id"] = json.RawMessage(itoa(base + int64(i)))
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		out[i] = b
	}
	return out
}

type ack struct {
	EventID   uint64 `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

var _ = Describe("persistence on the disk storage", func() {
	It("keeps events, ids and client offsets across a restart", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		cfg := app.Config{Storage: app.StorageDisk, DataDir: dir}
		kf := startKillfeed(cfg)
		body, _ := inSystem(jita, 0, 5)
		Expect(post(ctx, kf.URL()+"/api/killmails", body).Status).To(Equal(http.StatusCreated))
		poll := func(base, client string, extra ...string) pollAnswer {
			GinkgoHelper()
			r := get(ctx, pollURL(base, "/api/killfeed", client, []int64{jita}, extra...))
			Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
			var p pollAnswer
			r.JSON(&p)
			return p
		}
		before := poll(kf.URL(), "everything")
		Expect(before.IDs()).To(Equal([]uint64{1, 2, 3, 4, 5}))
		Expect(poll(kf.URL(), "a").IDs()).To(HaveLen(5))
		Expect(poll(kf.URL(), "b", "limit", "2").IDs()).To(Equal([]uint64{1, 2}))
		Expect(kf.Shutdown(ctx)).To(Succeed())

		kf = startKillfeed(cfg)
		after := poll(kf.URL(), "newcomer")
		Expect(after.IDs()).To(Equal(before.IDs()))
		for i := range after.Events {
			Expect(after.Events[i].Killmail).To(MatchJSON(before.Events[i].Killmail))
		}
		Expect(poll(kf.URL(), "a").Events).To(BeEmpty())
		Expect(poll(kf.URL(), "b").IDs()).To(Equal([]uint64{3, 4, 5}))
		more, _ := inSystem(jita, 5, 1)
		r := post(ctx, kf.URL()+"/api/killmails", more)
		Expect(r.Body).To(MatchJSON(`[{"event_id":6,"duplicate":false}]`))
		Expect(poll(kf.URL(), "a").IDs()).To(Equal([]uint64{6}))
		r = post(ctx, kf.URL()+"/api/killmails", body) // redelivery after the restart
		Expect(r.Body).To(MatchJSON(`[{"event_id":1,"duplicate":true},{"event_id":2,"duplicate":true},{"event_id":3,"duplicate":true},{"event_id":4,"duplicate":true},{"event_id":5,"duplicate":true}]`))
	}, SpecTimeout(30*time.Second))

	It("keeps every acknowledged insert, exactly once, through five kill -9s", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		const writers, perRound = 4, 400
		acked := map[int64]uint64{}   // killmail id -> event id
		byEvent := map[uint64]int64{} // event id -> killmail id
		var maxAcked uint64
		lastSeen := uint64(0) // newest event id the poller has taken

		for round := range 5 {
			p := startProcess(nil, "--storage", "disk", "--data-dir", dir, "--r2z2=false", "--offset-flush", "50ms")

			// What was acknowledged before the last kill is all there, once,
			// with its id: a redelivery answers the same id as a duplicate.
			for id, eventID := range acked {
				r := post(ctx, p.URL+"/api/killmails", uniqueKillmails(id, 1)[0])
				Expect(r.Status).To(Equal(http.StatusOK), "killmail %d lost: %s", id, r.Body)
				var a ack
				r.JSON(&a)
				Expect(a).To(Equal(ack{EventID: eventID, Duplicate: true}), "killmail %d", id)
			}
			// The poller loses nothing: what it had not taken comes now (a
			// few it had taken may come again: at-least-once).
			if round > 0 {
				r := get(ctx, pollURL(p.URL, "/api/killfeed", "poller", nil, "all", "true", "limit", "10000"))
				var pa pollAnswer
				r.JSON(&pa)
				got := map[uint64]bool{}
				for _, id := range pa.IDs() {
					got[id] = true
				}
				for _, eventID := range acked {
					if eventID > lastSeen {
						Expect(got).To(HaveKey(eventID), "poller lost event %d after a crash", eventID)
					}
				}
				if n := len(pa.Events); n > 0 {
					lastSeen = max(lastSeen, pa.Events[n-1].EventID)
				}
			}

			// Inserts from several writers, a poller, then kill -9 mid-stream.
			bodies := uniqueKillmails(int64(1_000_000*(round+1)), writers*perRound)
			var mu sync.Mutex
			var wg sync.WaitGroup
			enough := make(chan struct{})
			var once sync.Once
			for w := range writers {
				wg.Add(1)
				go func() {
					defer GinkgoRecover()
					defer wg.Done()
					client := &http.Client{Timeout: 10 * time.Second}
					for i := w; i < len(bodies); i += writers {
						res, err := client.Post(p.URL+"/api/killmails", "application/json", bytes.NewReader(bodies[i]))
						if err != nil {
							return // killed
						}
						var a ack
						err = json.NewDecoder(res.Body).Decode(&a)
						_ = res.Body.Close()
						if err != nil || res.StatusCode != http.StatusCreated {
							return
						}
						var km struct {
							ID int64 `json:"killmail_id"`
						}
						Expect(json.Unmarshal(bodies[i], &km)).To(Succeed())
						mu.Lock()
						Expect(acked).NotTo(HaveKey(km.ID))
						Expect(byEvent).NotTo(HaveKey(a.EventID), "event id %d given twice", a.EventID)
						acked[km.ID] = a.EventID
						byEvent[a.EventID] = km.ID
						maxAcked = max(maxAcked, a.EventID)
						if len(acked) >= 100*(round+1) {
							once.Do(func() { close(enough) })
						}
						mu.Unlock()
					}
				}()
			}
			Eventually(enough).WithTimeout(60 * time.Second).Should(BeClosed())
			r := get(ctx, pollURL(p.URL, "/api/killfeed", "poller", nil, "all", "true", "limit", "10000"))
			if r.Status == http.StatusOK {
				var pa pollAnswer
				r.JSON(&pa)
				if n := len(pa.Events); n > 0 {
					lastSeen = max(lastSeen, pa.Events[n-1].EventID)
				}
			}
			Expect(p.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
			Eventually(p.exited).WithTimeout(10 * time.Second).Should(BeClosed())
			wg.Wait()
		}

		// After the last kill: no id is reused.
		p := startProcess(nil, "--storage", "disk", "--data-dir", dir, "--r2z2=false")
		r := post(ctx, p.URL+"/api/killmails", uniqueKillmails(9_000_000, 1)[0])
		Expect(r.Status).To(Equal(http.StatusCreated))
		var a ack
		r.JSON(&a)
		Expect(a.EventID).To(BeNumerically(">", maxAcked))
	}, SpecTimeout(5*time.Minute))

	Describe("a data dir it cannot use stops start-up with a clear message and exit status 1", func() {
		run := func(dir string) string {
			GinkgoHelper()
			cmd := exec.Command(killfeedBinary(), "--listen", "127.0.0.1:0", "--r2z2=false", "--storage", "disk", "--data-dir", dir)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			Expect(err).To(BeAssignableToTypeOf(exit), "%s", out)
			Expect(err.(*exec.ExitError).ExitCode()).To(Equal(1))
			return string(out)
		}

		It("is locked by a running instance", func() {
			dir := GinkgoT().TempDir()
			startProcess(nil, "--storage", "disk", "--data-dir", dir, "--r2z2=false")
			Expect(run(dir)).To(And(ContainSubstring(dir), ContainSubstring("data dir in use")))
		})

		It("is corrupted", func(ctx SpecContext) {
			dir := GinkgoT().TempDir()
			p := startProcess(nil, "--storage", "disk", "--data-dir", dir, "--r2z2=false")
			Expect(post(ctx, p.URL+"/api/killmails", fixture.Lines()[0]).Status).To(Equal(http.StatusCreated))
			Expect(p.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
			Eventually(p.exited).WithTimeout(15 * time.Second).Should(BeClosed())
			manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			Expect(err).NotTo(HaveOccurred())
			Expect(manifests).NotTo(BeEmpty())
			for _, m := range manifests {
				Expect(os.WriteFile(m, []byte("this is not a manifest"), 0o644)).To(Succeed())
			}
			Expect(run(dir)).To(And(ContainSubstring(dir), ContainSubstring("corrupt")))
		}, SpecTimeout(30*time.Second))

		It("is not a directory", func() {
			file := filepath.Join(GinkgoT().TempDir(), "file")
			Expect(os.WriteFile(file, []byte("x"), 0o644)).To(Succeed())
			Expect(run(file)).To(ContainSubstring(file))
		})
	})
})
