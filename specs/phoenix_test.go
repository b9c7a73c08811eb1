package specs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

// phxLine is one line the node script prints.
type phxLine struct {
	Event      string `json:"event"`
	Topic      string `json:"topic"`
	Reason     string `json:"reason"`
	Code       int    `json:"code"`
	Head       uint64 `json:"head"`
	Missed     bool   `json:"missed"`
	Since      uint64 `json:"since"`
	Status     string `json:"status"`
	EventID    uint64 `json:"event_id"`
	SystemID   int64  `json:"system_id"`
	KillmailID int64  `json:"killmail_id"`
}

// servedAPI is a running killfeed whose websockets a spec can close
// server-side while it keeps serving.
type servedAPI struct {
	URL string
	API *transport.Server
}

func serveAPI() servedAPI {
	GinkgoHelper()
	a := startKillfeed(app.Config{})
	return servedAPI{URL: a.URL(), API: a.API()}
}

// startNode runs specs/js/<script> against base; lines are what it prints.
func startNode(ctx context.Context, script, base string) (lines <-chan phxLine, stdin io.Writer) {
	GinkgoHelper()
	_, err := exec.LookPath("node")
	Expect(err).NotTo(HaveOccurred(), "the Phoenix client spec needs Node.js 20+ on PATH")
	dir := fixture.Path("specs", "js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "phoenix")); err != nil {
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = dir
		out, err := npm.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "npm ci in specs/js: %s", out)
	}
	cmd := exec.Command("node", script, base)
	cmd.Dir = dir
	cmd.Stderr = GinkgoWriter
	in, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	out, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	ch := make(chan phxLine, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(GinkgoWriter, "node:", sc.Text())
			var l phxLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				ch <- l
			}
		}
	}()
	DeferCleanup(func() {
		_ = in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		for range ch {
		}
	})
	return ch, in
}

// expectLine waits for the next line of an event type, failing on
// duplicates; other lines are skipped.
func expectLine(ctx context.Context, lines <-chan phxLine, event string) phxLine {
	GinkgoHelper()
	for {
		select {
		case l, ok := <-lines:
			Expect(ok).To(BeTrue(), "node exited while waiting for %q", event)
			Expect(l.Event).NotTo(Equal("duplicate"), "event %d pushed twice", l.EventID)
			if l.Event == event {
				return l
			}
		case <-ctx.Done():
			Fail("no " + event + " from node: " + context.Cause(ctx).Error())
		}
	}
}

func expectKillmails(ctx context.Context, lines <-chan phxLine, want []uint64) {
	GinkgoHelper()
	got := make([]uint64, 0, len(want))
	for len(got) < len(want) {
		l := expectLine(ctx, lines, "killmail")
		Expect(l.SystemID).To(Equal(jita))
		Expect(l.KillmailID).To(BeNumerically(">", 0))
		got = append(got, l.EventID)
	}
	Expect(got).To(Equal(want))
}

var _ = Describe("Phoenix Channels v2 (GET /socket/websocket)", func() {
	It("serves the official phoenix client: join, pushes, heartbeats, and a rejoin with since after a server-side close", func(ctx SpecContext) {
		srv := serveAPI()
		wsInsert(ctx, srv.URL, jita, 2) // before the join: not pushed
		lines, stdin := startNode(ctx, "follow.mjs", srv.URL)

		joined := expectLine(ctx, lines, "joined")
		Expect(joined.Head).To(Equal(uint64(2)))
		Expect(joined.Missed).To(BeFalse())
		bad := expectLine(ctx, lines, "join_error")
		Expect(bad.Topic).To(Equal("nope:1"))
		Expect(bad.Reason).To(Equal("unmatched topic"))
		Expect(expectLine(ctx, lines, "heartbeat").Status).To(Equal("ok"))

		wsInsert(ctx, srv.URL, amarr, 2)
		first := wsInsert(ctx, srv.URL, jita, 3)
		expectKillmails(ctx, lines, first)

		// Server-side close (1001, as on shutdown); events arrive while the
		// client is away; it reconnects and rejoins with since.
		Expect(srv.API.CloseWebsockets(ctx)).To(Succeed())
		Expect(expectLine(ctx, lines, "close").Code).To(Equal(1001))
		away := wsInsert(ctx, srv.URL, jita, 4)
		rejoined := expectLine(ctx, lines, "joined")
		Expect(rejoined.Since).To(Equal(first[len(first)-1]))
		expectKillmails(ctx, lines, away)
		live := wsInsert(ctx, srv.URL, jita, 2)
		expectKillmails(ctx, lines, live)

		_, err := io.WriteString(stdin, "leave\n")
		Expect(err).NotTo(HaveOccurred())
		expectLine(ctx, lines, "left")
		wsInsert(ctx, srv.URL, jita, 1) // no longer pushed
		_, err = io.WriteString(stdin, "quit\n")
		Expect(err).NotTo(HaveOccurred())
		for l := range lines {
			Expect(l.Event).NotTo(BeElementOf("killmail", "duplicate"), "after leave: %+v", l)
		}
	}, SpecTimeout(60*time.Second))
})
