package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/selection"
)

// pastOffsetFlush is how long a spec waits after its last read before it
// kills the server: the default --offset-flush (1 s), plus the websocket
// checkpoint that moves a caught-up client_id to the head (about 1 s), plus
// room for a slow machine. docs/persistence.md promises that a crash after this
// loses no offset change.
const pastOffsetFlush = 4 * time.Second

var _ = Describe("a crash (kill -9 of the binary) on the disk storage", func() {
	It("loses no client offset changed more than --offset-flush before it: polls, websocket client_ids and RedisQ queues", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		args := []string{"--storage", "disk", "--data-dir", dir, "--r2z2=false"} // default --offset-flush
		p := startProcess(nil, args...)

		queue := listenURL(p.URL, "/listen.php", "crashbot", "ttw", "1")
		status, pkg := listenServed(ctx, queue) // the queue starts at the head: empty
		Expect(status).To(Equal(http.StatusOK))
		Expect(pkg.Package).To(BeNil())

		ids, kills := insertKills(ctx, p.URL, jita, 50)
		pollAll := func(base string) []uint64 {
			GinkgoHelper()
			r := get(ctx, pollURL(base, "/api/killfeed", "reader", nil, "all", "true"))
			Expect(r.Status).To(Equal(http.StatusOK), "%s", r.Body)
			var pa pollAnswer
			r.JSON(&pa)
			return pa.IDs()
		}
		Expect(pollAll(p.URL)).To(Equal(ids))

		ws := wsDial(ctx, p.URL, 0)
		ws.send(ctx, fmt.Sprintf(`{"type":"subscribe","systems":[%d],"client_id":"follower"}`, jita))
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		Expect(ws.killmails(ctx, 50)).To(Equal(ids))

		listenKills(ctx, queue, kills, "")

		// Two more: the poller and the websocket read them, the queue does not.
		more, moreKills := insertKills(ctx, p.URL, jita, 2)
		Expect(pollAll(p.URL)).To(Equal(more))
		Expect(ws.killmails(ctx, 2)).To(Equal(more))

		time.Sleep(pastOffsetFlush)
		Expect(p.cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		Eventually(p.exited).WithTimeout(10 * time.Second).Should(BeClosed())

		p = startProcess(nil, args...)
		Expect(pollAll(p.URL)).To(BeEmpty(), "the poller was served everything again")

		ws = wsDial(ctx, p.URL, 0)
		ws.send(ctx, fmt.Sprintf(`{"type":"subscribe","systems":[%d],"client_id":"follower"}`, jita))
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		last, lastKills := insertKills(ctx, p.URL, jita, 1)
		Expect(ws.killmails(ctx, 1)).To(Equal(last), "the websocket client_id was replayed from an old offset")
		Expect(pollAll(p.URL)).To(Equal(last))

		// The queue resumes at its own position: first the two it had not read.
		queue = listenURL(p.URL, "/listen.php", "crashbot", "ttw", "1")
		listenKills(ctx, queue, append(moreKills, lastKills...), "the queue lost its position (restarted at the head)")
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("an answer that never reaches its client", func() {
	var kf *app.App
	BeforeEach(func() { kf = startKillfeed(app.Config{}) })

	// dropAfterStoreAnswers sends a GET for path on a raw connection while
	// the store actor is stalled, so that its fetch waits in the store's
	// mailbox; resets the connection; and returns once the store, after the
	// stall, has answered. The server's write then finds its client gone.
	dropAfterStoreAnswers := func(ctx context.Context, path string, answered func() bool) {
		GinkgoHelper()
		kf.Actors().System().Root.Send(kf.Actors().Store(), &actors.Stall{D: 1500 * time.Millisecond})
		conn, err := net.Dial("tcp", kf.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, kf.Addr())
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(300 * time.Millisecond) // the request reaches its handler, which asks the stalled store
		Expect(conn.(*net.TCPConn).SetLinger(0)).To(Succeed())
		Expect(conn.Close()).To(Succeed()) // RST: the server sees its client gone
		Eventually(answered).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeTrue())
		// Let the handler finish with the answer before the next request.
		Eventually(func() error {
			_, err := kf.Actors().FetchForClient(ctx, "probe", selection.Of([]int64{1}))
			return err
		}).WithContext(ctx).Should(Succeed())
	}
	clientExists := func() bool { return kf.Actors().Stats().Clients > 0 }
	// putBack waits until the dropped answer's events are unread again: the
	// handler puts them back once its write failed, which may come after
	// the store answered the probe. A peek moves no offset.
	putBack := func(ctx context.Context, client string, ids []uint64) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			b, err := kf.Actors().Fetch(ctx, &actors.PeekForClient{ClientID: client, Selection: selection.Of([]int64{jita}), Limit: 100})
			g.Expect(err).NotTo(HaveOccurred())
			got := make([]uint64, len(b.Events))
			for i, e := range b.Events {
				got[i] = e.ID
			}
			g.Expect(got).To(Equal(ids))
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())
	}

	It("leaves a long-poll's events unread when its connection dropped after the store answered", func(ctx SpecContext) {
		ids := wsInsert(ctx, kf.URL(), jita, 3)
		dropAfterStoreAnswers(ctx, "/api/killfeed?client_id=dropped&wait=5&systems[]="+itoa(jita), clientExists)
		putBack(ctx, "dropped", ids)
		r := get(ctx, pollURL(kf.URL(), "/api/killfeed", "dropped", []int64{jita}))
		var pa pollAnswer
		r.JSON(&pa)
		Expect(pa.IDs()).To(Equal(ids))
	}, SpecTimeout(30*time.Second))

	It("leaves /api/killfeed/next's event unread when its connection dropped after the store answered", func(ctx SpecContext) {
		ids := wsInsert(ctx, kf.URL(), jita, 2)
		dropAfterStoreAnswers(ctx, "/api/killfeed/next?client_id=dropped&systems[]="+itoa(jita), clientExists)
		putBack(ctx, "dropped", ids)
		for _, id := range ids {
			r := get(ctx, pollURL(kf.URL(), "/api/killfeed/next", "dropped", []int64{jita}))
			Expect(r.Status).To(Equal(http.StatusOK))
			var ev struct {
				EventID uint64 `json:"event_id"`
			}
			r.JSON(&ev)
			Expect(ev.EventID).To(Equal(id))
		}
	}, SpecTimeout(30*time.Second))

	It("keeps a RedisQ package first in its queue when its response was not written", func(ctx SpecContext) {
		queue := listenURL(kf.URL(), "/listen.php", "dropbot", "ttw", "1")
		status, _ := listenServed(ctx, queue) // joins at the head
		Expect(status).To(Equal(http.StatusOK))
		_, kills := insertKills(ctx, kf.URL(), jita, 2)
		u, err := url.Parse(queue)
		Expect(err).NotTo(HaveOccurred())
		stalled := time.Now()
		dropAfterStoreAnswers(ctx, u.RequestURI(), func() bool { return time.Since(stalled) > 1600*time.Millisecond })
		listenKills(ctx, queue, kills, "")
	}, SpecTimeout(30*time.Second))
})

// insertKills posts n killmails into system and returns their event ids
// and killmail ids.
func insertKills(ctx context.Context, base string, system int64, n int) (eventIDs []uint64, killIDs []int64) {
	GinkgoHelper()
	body := wsKillmails(system, n)
	eventIDs = postKillmails(ctx, base, body)
	var kms []struct {
		ID int64 `json:"killmail_id"`
	}
	Expect(json.Unmarshal(body, &kms)).To(Succeed())
	for _, km := range kms {
		killIDs = append(killIDs, km.ID)
	}
	return eventIDs, killIDs
}

// listenKills takes len(want) packages from a RedisQ queue and expects
// their killIDs to be want, in order.
func listenKills(ctx context.Context, queue string, want []int64, why string) {
	GinkgoHelper()
	for _, id := range want {
		status, pkg := listenServed(ctx, queue)
		Expect(status).To(Equal(http.StatusOK))
		Expect(pkg.Package).NotTo(BeNil(), why)
		Expect(pkg.Package.KillID).To(Equal(id), why)
	}
}
