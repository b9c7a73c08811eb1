package specs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/internal/fixture"
)

// runBinary runs the killfeed binary to its end and returns its output and
// exit status.
func runBinary(ctx SpecContext, args ...string) (stdout, stderr string, code int) {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, killfeedBinary(), args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		var exit *exec.ExitError
		Expect(err).To(BeAssignableToTypeOf(exit), "%s", errOut.String())
		return out.String(), errOut.String(), err.(*exec.ExitError).ExitCode()
	}
	return out.String(), errOut.String(), 0
}

var _ = Describe("the killfeed command line", func() {
	DescribeTable("exits 2 with the usage, starting nothing, on a command line it does not understand",
		func(ctx SpecContext, args ...string) {
			// --listen on a port in use would fail with 1 if a server started;
			// a server that started would not exit at all.
			_, stderr, code := runBinary(ctx, args...)
			Expect(code).To(Equal(2), "%s", stderr)
			Expect(stderr).To(ContainSubstring("usage: killfeed"))
			Expect(stderr).NotTo(ContainSubstring("killfeed listening"))
		},
		Entry("an unknown command", "bogus"),
		Entry("a stray argument after serve", "serve", "--storage", "memory", "extra"),
		Entry("a stray argument without serve", "--storage", "memory", "extra"),
		Entry("arguments to version", "version", "--storage"),
		Entry("an unknown flag", "--storage", "memory", "--no-such-flag"),
		Entry("an unknown flag of import", "import", "--bogus", "x.jsonl"),
		Entry("an unknown flag of edge", "edge", "--bogus"),
		Entry("a value that does not parse", "--storage", "memory", "--gc-interval", "often"),
		Entry("import without files", "import", "--to", "http://127.0.0.1:1"),
		Entry("import --to that is not http", "import", "--to", "ftp://127.0.0.1:1", "x.jsonl"),
	)

	It("names the format a bad value should have", func(ctx SpecContext) {
		_, stderr, code := runBinary(ctx, "--storage", "memory", "--max-age", "3days")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`--max-age: "3days" is not a duration with its unit, such as 500ms, 30s, 5m or 1h30m`))
	}, SpecTimeout(60*time.Second))

	It("imports from standard input with -, a JSON array too, to a --to without a scheme, and reports what it POSTs", func(ctx SpecContext) {
		p := startProcess(nil, "--storage", "memory")
		lines := fixture.Lines()
		host := strings.TrimPrefix(p.URL, "http://")
		cmd := exec.CommandContext(ctx, killfeedBinary(), "import", "--to", host, "-")
		cmd.Stdin = strings.NewReader("\ufeff[\n" + string(lines[0]) + ",\n" + string(lines[1]) + "\n]\n")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		Expect(string(out)).To(ContainSubstring("read 2  inserted 2  duplicates 0  rejected 0"))

		cmd = exec.CommandContext(ctx, killfeedBinary(), "import", "--to", p.URL+"/api", "-")
		cmd.Stdin = strings.NewReader(string(lines[2]) + "\n")
		out, err = cmd.CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("POST " + p.URL + "/api/api/killmails: 404 Not Found"))
		Expect(string(out)).To(ContainSubstring("is --to the base URL of a killfeed"))
	}, SpecTimeout(60*time.Second))

	It("imports the lines of a truncated gzip file read whole, then fails with exit status 1", func(ctx SpecContext) {
		data := mustRead(fixture.Path("testdata", "killmails.jsonl.gz"))
		file := filepath.Join(GinkgoT().TempDir(), "cut.jsonl.gz")
		Expect(os.WriteFile(file, data[:len(data)-4], 0o600)).To(Succeed()) // the trailer cut
		stdout, stderr, code := runBinary(ctx, "import", "--data-dir", GinkgoT().TempDir(), file)
		Expect(code).To(Equal(1))
		Expect(stdout).To(ContainSubstring("read 300  inserted 300  duplicates 0  rejected 0"))
		Expect(stderr).To(ContainSubstring("import " + file + ": unexpected EOF"))
	}, SpecTimeout(60*time.Second))

	It("warns of KILLFEED_* variables that name no setting", func(ctx SpecContext) {
		p := startProcess([]string{"KILLFEED_MAX_EVENT=10", "KILLFEED_STORAGE=memory"}, "--r2z2=false")
		// Logged before the listening line startProcess waited for.
		Expect(string(p.stderr.Contents())).To(ContainSubstring(`unknown environment variable ignored: no setting of killfeed serve has this name (see killfeed help serve)" name=KILLFEED_MAX_EVENT`))
		Expect(string(p.stderr.Contents())).NotTo(ContainSubstring("name=KILLFEED_STORAGE"))
	}, SpecTimeout(60*time.Second))

	It("prints its version and build information", func(ctx SpecContext) {
		stdout, _, code := runBinary(ctx, "version")
		Expect(code).To(BeZero())
		Expect(stdout).To(MatchRegexp(`(?m)^killfeed \S+\nmodule   github.com/killfeed/killfeed\nrevision \S+`))
		Expect(stdout).To(ContainSubstring("go       go1."))
	}, SpecTimeout(60*time.Second))

	It("prints the help, every flag with its environment variable, and exits 0", func(ctx SpecContext) {
		stdout, _, code := runBinary(ctx, "help")
		Expect(code).To(BeZero())
		Expect(stdout).To(ContainSubstring("killfeed import"))
		Expect(stdout).To(ContainSubstring("--data-dir string  (KILLFEED_DATA_DIR)"))
		_, stderr, code := runBinary(ctx, "--help")
		Expect(code).To(BeZero())
		Expect(stderr).To(ContainSubstring("--listen string  (KILLFEED_LISTEN)"))
	}, SpecTimeout(60*time.Second))

	It("serves with `serve` and flags, as without it", func(ctx SpecContext) {
		p := startProcess(nil, "serve", "--storage", "memory", "--r2z2=false")
		Expect(get(ctx, p.URL+"/readyz").Status).To(Equal(200))
	}, SpecTimeout(60*time.Second))
})
