package specs_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/killfeed/killfeed/internal/fixture"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryDir  string
)

// killfeedBinary builds cmd/killfeed once per suite run.
func killfeedBinary() string {
	GinkgoHelper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "killfeed-bin-")
		Expect(err).NotTo(HaveOccurred())
		binaryDir = dir
		binaryPath = filepath.Join(dir, "killfeed")
		cmd := exec.Command("go", "build", "-o", binaryPath, "./cmd/killfeed")
		cmd.Dir = fixture.Root()
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go build: %s", out)
	})
	return binaryPath
}

// removeBinary deletes what killfeedBinary built; the suite calls it last.
func removeBinary() {
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
}

// process is a killfeed binary running as a subprocess.
type process struct {
	cmd    *exec.Cmd
	stderr *gbytes.Buffer
	URL    string
	exited chan struct{} // closed when the process has exited
	err    error         // its exit error, once exited is closed
}

var listeningAddr = regexp.MustCompile(`msg="killfeed listening" addr=(\S+)`)

// startProcess runs the binary with args and env on a loopback port and
// waits until it logs its address.
func startProcess(env []string, args ...string) *process {
	GinkgoHelper()
	var sub []string
	if len(args) > 0 && args[0] == "serve" { // the subcommand comes first
		sub, args = []string{"serve"}, args[1:]
	}
	return startSubcommand(env, sub, args...)
}

// startSubcommand is startProcess for a subcommand (e.g. "edge").
func startSubcommand(env []string, sub []string, args ...string) *process {
	GinkgoHelper()
	head := append(sub, "--listen", "127.0.0.1:0")
	if len(sub) == 0 || sub[0] == "serve" {
		// No ESI and no R2Z2 from specs: a spec that wants names passes
		// --names and a fake --esi-url; the upstream feeds are faked in
		// ingest's own tests.
		head = append(head, "--names=false", "--r2z2=false")
	}
	cmd := exec.Command(killfeedBinary(), append(head, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, stderr: gbytes.NewBuffer(), exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text() + "\n"
			_, _ = p.stderr.Write([]byte(line))
			_, _ = GinkgoWriter.Write([]byte(line))
		}
	}()
	go func() { p.err = cmd.Wait(); _ = pw.Close(); close(p.exited) }()
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	Eventually(p.stderr).WithTimeout(30 * time.Second).Should(gbytes.Say(`killfeed listening`))
	m := listeningAddr.FindStringSubmatch(string(p.stderr.Contents()))
	Expect(m).To(HaveLen(2))
	p.URL = "http://" + m[1]
	return p
}

var _ = Describe("the killfeed binary", func() {
	It("finishes an in-flight long-poll and exits 0 on SIGTERM", func(ctx SpecContext) {
		p := startProcess(nil, "--storage", "memory")
		Expect(post(ctx, p.URL+"/api/killmails", fixture.Lines()[0]).Status).To(Equal(http.StatusCreated))
		poll := func(wait string) response {
			return get(ctx, pollURL(p.URL, "/api/killfeed", "term", []int64{jita}, "wait", wait))
		}
		poll("0")
		answered := make(chan response, 1)
		go func() {
			defer GinkgoRecover()
			answered <- poll("30")
		}()
		Consistently(answered).WithTimeout(300 * time.Millisecond).ShouldNot(Receive())
		Expect(p.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		var r response
		Eventually(answered).WithTimeout(15 * time.Second).Should(Receive(&r))
		Expect(r.Status).To(Equal(http.StatusOK))
		Eventually(p.exited).WithTimeout(15 * time.Second).Should(BeClosed())
		Expect(p.err).NotTo(HaveOccurred())
		Expect(p.stderr).To(gbytes.Say("shutting down"))
	}, SpecTimeout(60*time.Second))

	It("answers /readyz 503 for the drain grace after SIGTERM while serving the rest, then exits", func(ctx SpecContext) {
		p := startProcess(nil, "--storage", "memory") // the default grace, 5s
		Expect(readyz(ctx, p.URL)).To(Equal(http.StatusOK))
		Expect(p.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(func() int { return readyz(ctx, p.URL) }).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).
			Should(Equal(http.StatusServiceUnavailable))
		Expect(p.stderr).To(gbytes.Say(`draining: /readyz answers 503 until the listener closes" grace=5s`))
		// Still serving while it drains: a load balancer sees 503, not a refused connection.
		r := get(ctx, p.URL+"/readyz")
		Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
		Expect(r.Error()).To(Equal("draining: shutting down"))
		Expect(get(ctx, p.URL+"/healthz").Status).To(Equal(http.StatusOK))
		Expect(post(ctx, p.URL+"/api/killmails", fixture.Lines()[0]).Status).To(Equal(http.StatusCreated))
		Eventually(p.exited).WithTimeout(20 * time.Second).Should(BeClosed())
		Expect(p.err).NotTo(HaveOccurred())
	}, SpecTimeout(60*time.Second))

	It("closes at once on SIGTERM with --drain-grace 0", func(ctx SpecContext) {
		p := startProcess(nil, "--storage", "memory", "--drain-grace", "0")
		Expect(p.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(p.exited).WithTimeout(20 * time.Second).Should(BeClosed())
		Expect(p.err).NotTo(HaveOccurred())
		Expect(string(p.stderr.Contents())).NotTo(ContainSubstring("draining"))
	}, SpecTimeout(60*time.Second))

	It("takes its settings from KILLFEED_* variables", func(ctx SpecContext) {
		p := startProcess([]string{"KILLFEED_INGEST_TOKEN=from-env", "KILLFEED_STORAGE=memory"})
		r := post(ctx, p.URL+"/api/killmails", fixture.Lines()[0])
		Expect(r.Status).To(Equal(http.StatusUnauthorized))
		r = do(ctx, http.MethodPost, p.URL+"/api/killmails", fixture.Lines()[0], http.Header{"Authorization": {"Bearer from-env"}})
		Expect(r.Status).To(Equal(http.StatusCreated))
	}, SpecTimeout(60*time.Second))

	It("refuses a --data-dir holding files it did not write, exit status 1", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "photos.tar"), []byte("not killfeed's"), 0o600)).To(Succeed())
		cmd := exec.CommandContext(ctx, killfeedBinary(), "--listen", "127.0.0.1:0", "--data-dir", dir)
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(err.(*exec.ExitError).ExitCode()).To(Equal(1), "%s", out)
		Expect(string(out)).To(ContainSubstring("pebblestore: data dir holds files killfeed did not write: " + filepath.Join(dir, "photos.tar")))
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(1))
	}, SpecTimeout(60*time.Second))

	DescribeTable("refuses bad settings with a message naming them and exit status 1",
		func(ctx SpecContext, env []string, args []string, mentions string) {
			cmd := exec.CommandContext(ctx, killfeedBinary(), append([]string{"--listen", "127.0.0.1:0"}, args...)...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			Expect(err).To(BeAssignableToTypeOf(exit))
			Expect(err.(*exec.ExitError).ExitCode()).To(Equal(1), "%s", out)
			Expect(string(out)).To(ContainSubstring(mentions))
		},
		Entry("an unknown storage", nil, []string{"--storage", "tape"}, "storage"),
		Entry("a negative duration", nil, []string{"--storage", "memory", "--max-age", "-1h"}, "max-age"),
		Entry("a malformed variable", []string{"KILLFEED_GC_INTERVAL=often"}, []string{"--storage", "memory"}, "KILLFEED_GC_INTERVAL"),
		Entry("an address that cannot be bound", nil, []string{"--storage", "memory", "--listen", "256.0.0.1:0"}, "listen"),
	)
})
