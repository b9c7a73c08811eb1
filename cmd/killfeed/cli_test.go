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
		{"import", "--bogus"},
		{"import", "--to", "http://127.0.0.1:1"},
		{"import", "--to", "ftp://host", "x.jsonl"},
		{"edge", "--bogus"},
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

// TestBadValuesNameTheirFormat: a value that does not parse, from a flag or
// from its variable, says what the flag expects.
func TestBadValuesNameTheirFormat(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
		code int
	}{
		{[]string{"--gc-interval", "often"}, nil, `--gc-interval: "often" is not a duration with its unit, such as 500ms, 30s, 5m or 1h30m`, 2},
		{[]string{"--max-events", "lots"}, nil, `--max-events: "lots" is not a whole number, such as 10`, 2},
		{[]string{"--metrics=maybe"}, nil, `--metrics: "maybe" is not true or false`, 2},
		{[]string{"import", "--parallel", "x", "-"}, nil, `--parallel: "x" is not a whole number`, 2},
		{[]string{"--storage", "memory"}, map[string]string{"KILLFEED_CLIENT_TTL": "1 day"}, `KILLFEED_CLIENT_TTL: "1 day" is not a duration with its unit`, 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, tc.args, func(k string) string { return tc.env[k] }, &out, &errOut)
			if code := exitCode(err); code != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exit %d, error %v; want %d and %q", code, err, tc.code, tc.want)
			}
		})
	}
}

func TestUnknownEnvironmentVariables(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("max-events", 0, "")
	got := unknownEnv(fs, []string{"KILLFEED_MAX_EVENTS=1", "KILLFEED_MAX_EVENT=2", "HOME=/root", "KILLFEED_INGEST_TOKEN=x"}, "KILLFEED_INGEST_TOKEN")
	if len(got) != 1 || got[0] != "KILLFEED_MAX_EVENT" {
		t.Fatalf("unknown: %v, want [KILLFEED_MAX_EVENT]", got)
	}
}

func TestImportBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":        "http://127.0.0.1:8080",
		"http://kf:8080/":       "http://kf:8080",
		"https://kf.example/a/": "https://kf.example/a",
	} {
		if got, err := baseURL(in); err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ftp://kf", "http://", "http://[::1"} {
		if _, err := baseURL(in); err == nil {
			t.Errorf("baseURL(%q) accepted", in)
		}
	}
}
