package specs_test

import (
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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
	)

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
