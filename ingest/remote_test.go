package ingest_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/ingest"
	"github.com/killfeed/killfeed/ingest/remotepb"
)

// ingestor builds examples/remote-ingestor: the second actor system runs in
// its own process, as it does in a cluster (and because Proto.Actor's
// remote.Start sets gRPC's global logger, two remotes in one process race).
func ingestor() string {
	GinkgoHelper()
	path, err := gexec.Build("github.com/killfeed/killfeed/examples/remote-ingestor")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	return path
}

// Proto.Actor's remote.Start sets gRPC's global logger on every call, which
// gRPC goroutines of an earlier remote read without synchronisation: the race
// detector flags any second Start in a process once gRPC has run. So this
// process starts remoting once: the specs are ordered, the failing start
// comes first (before any gRPC goroutine exists), and one endpoint then
// serves the rest.
var _ = Describe("Remote ingest endpoint", Ordered, func() {
	var (
		svc *actors.Service
		rem *ingest.Remote
	)

	It("fails to start on an address in use, without panicking", func() {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer busy.Close()
		_, err = ingest.StartRemote(startService(), ingest.RemoteConfig{Listen: busy.Addr().String()})
		Expect(err).To(MatchError(ContainSubstring("remote listen")))
	})

	It("starts on a free address", func() {
		log, err := eventlog.Open(eventlog.Config{}, nil)
		Expect(err).NotTo(HaveOccurred())
		svc, err = actors.Start(log, false, actors.Config{Logger: testLogger()})
		Expect(err).NotTo(HaveOccurred())
		rem, err = ingest.StartRemote(svc, ingest.RemoteConfig{Listen: "127.0.0.1:0", Logger: testLogger()})
		Expect(err).NotTo(HaveOccurred())
	})

	AfterAll(func() {
		if rem != nil {
			rem.Stop()
		}
		if svc != nil {
			svc.Stop()
		}
	})

	It("stores InsertKillmail from another actor system and answers the event id", func(ctx SpecContext) {
		lines := fixtureLines()
		km := parse(lines[0])
		sub, err := svc.Subscribe(ctx, []int64{km.SystemID})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(sub.Close)

		bin := ingestor()
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "kms.jsonl")
		var input []byte
		for _, l := range [][]byte{lines[0], lines[0], []byte(`{"killmail_id":1}`), lines[1]} {
			input = append(append(input, l...), '\n')
		}
		Expect(os.WriteFile(file, input, 0o600)).To(Succeed())

		cmd := exec.Command(bin, "-v", "--addr", rem.Address(), file)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(session).WithContext(ctx).Should(gexec.Exit(1)) // one line refused
		out := strings.Split(strings.TrimSpace(string(session.Out.Contents())), "\n")
		Expect(out).To(HaveLen(4))

		var got *actors.KillmailInserted
		Eventually(sub.C).WithContext(ctx).Should(Receive(&got))
		Expect(got.Killmail).To(MatchJSON(km.JSON))
		Expect(out[0]).To(Equal(fmt.Sprintf("%s:1 event_id=%d duplicate=false", file, got.EventID)))
		Expect(out[1]).To(Equal(fmt.Sprintf("%s:2 event_id=%d duplicate=true", file, got.EventID)))
		Expect(out[2]).To(And(HavePrefix(file+":3 error="), ContainSubstring("solar_system_id")))
		Expect(out[3]).To(Equal(fmt.Sprintf("%s:4 event_id=%d duplicate=false", file, got.EventID+1)))
		Expect(session.Err.Contents()).To(ContainSubstring("sent 4  inserted 2  duplicates 1  refused 1"))
		Expect(svc.Stats().Events).To(Equal(2))

		// The whole fixture, many requests in flight.
		cmd = exec.Command(bin, "--addr", rem.Address(), "--inflight", "100", fixture)
		session, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(session).WithContext(ctx).Should(gexec.Exit(0))
		Expect(session.Err.Contents()).To(ContainSubstring("sent 300  inserted 298  duplicates 2  refused 0"))
		Expect(svc.Stats().Events).To(Equal(300))
	}, SpecTimeout(90*time.Second))

	It("refuses a system_id that does not match the killmail's", func(ctx SpecContext) {
		lines := fixtureLines()
		km := parse(lines[0])
		ask := func(msg *remotepb.InsertKillmail) *remotepb.InsertKillmailResult {
			GinkgoHelper()
			res, err := svc.System().Root.RequestFuture(rem.PID(), msg, 5*time.Second).Result()
			Expect(err).NotTo(HaveOccurred())
			return res.(*remotepb.InsertKillmailResult)
		}
		Expect(ask(&remotepb.InsertKillmail{SystemId: km.SystemID + 1, KillmailJson: lines[0]}).GetError()).
			To(ContainSubstring("does not match"))
		ok := ask(&remotepb.InsertKillmail{SystemId: km.SystemID, KillmailJson: lines[0]})
		Expect(ok.GetError()).To(BeEmpty())
		Expect(ok.GetEventId()).To(Equal(uint64(1)))
	})

	It("refuses what a client could not decode, naming the path", func() {
		before := svc.Stats().Events
		for name, p := range poisons {
			res, err := svc.System().Root.RequestFuture(rem.PID(),
				&remotepb.InsertKillmail{SystemId: 30000142, KillmailJson: poison(name, 10)}, 5*time.Second).Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(res.(*remotepb.InsertKillmailResult).GetError()).To(ContainSubstring(p.path), name)
		}
		Expect(svc.Stats().Events).To(Equal(before))
	})
})
