package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestUsageErrors checks that a command line naming no known command, or
// with a stray argument, exits 2 with the usage and starts nothing (a
// server would block until the context ends, and bind :8080).
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"serve", "extra"},
		{"--storage", "memory", "extra"},
		{"serve", "--storage", "memory", "extra"},
		{"version", "now"},
		{"help", "bogus"},
		{"--no-such-flag"},
		{"serve", "--gc-interval", "often"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, stderr, err := runCLI(t, args...)
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit code %d (err %v), want 2", code, err)
			}
			if !strings.Contains(stderr, "usage: killfeed") {
				t.Errorf("stderr has no usage: %q", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"killfeed ", "module   github.com/killfeed/killfeed", "revision ", "go       go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpListsEveryFlagWithItsEnvVariable(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"serve", "--help"}, {"help", "serve"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, err := runCLI(t, args...)
			if code := exitCode(err); code != 0 {
				t.Fatalf("exit code %d (err %v), want 0", code, err)
			}
			text := stdout + stderr
			for _, want := range []string{"usage: killfeed", "import", "version",
				"--listen string  (KILLFEED_LISTEN)", "--storage string  (KILLFEED_STORAGE)",
				"--metrics  (KILLFEED_METRICS)", "--ingest-token string  (KILLFEED_INGEST_TOKEN)"} {
				if !strings.Contains(text, want) {
					t.Errorf("help lacks %q", want)
				}
			}
		})
	}
	stdout, _, err := runCLI(t, "help", "import")
	if err != nil || !strings.Contains(stdout, "usage: killfeed import") {
		t.Errorf("help import: %v %q", err, stdout)
	}
}

func TestExitCode(t *testing.T) {
	if exitCode(nil) != 0 || exitCode(flag.ErrHelp) != 0 || exitCode(errors.New("boom")) != 1 || exitCode(usagef("x")) != 2 {
		t.Error("exit codes: nil 0, help 0, error 1, usage 2")
	}
}

func TestMetricsFlag(t *testing.T) {
	var no bool
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(invertedBool{&no}, "metrics", "")
	if err := fs.Parse([]string{"--metrics=false"}); err != nil || !no {
		t.Fatalf("--metrics=false: NoMetrics %v, err %v", no, err)
	}
	if err := fs.Parse([]string{"--metrics"}); err != nil || no {
		t.Fatalf("--metrics: NoMetrics %v, err %v", no, err)
	}
}
