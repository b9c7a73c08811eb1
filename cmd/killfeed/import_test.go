package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
)

const fixture = "../../testdata/killmails.jsonl.gz"

func brokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broken.jsonl")
	if err := os.WriteFile(path, []byte("{\"killmail_id\":1}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runImportCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"import"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	t.Logf("stderr: %s", stderr.String())
	return stdout.String(), err
}

func TestImportTo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	a, err := app.Start(app.Config{Listen: "127.0.0.1:0", Storage: app.StorageMemory, IngestToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())

	out, err := runImportCmd(t, map[string]string{"KILLFEED_INGEST_TOKEN": "tok"}, "--to", a.URL(), fixture)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "read 300  inserted 300  duplicates 0  rejected 0  in ") {
		t.Errorf("summary: %q", out)
	}

	broken := brokenFile(t)
	out, err = runImportCmd(t, nil, "--to", a.URL(), "--token", "tok", fixture, broken)
	if err == nil || !strings.Contains(err.Error(), "2 lines rejected") {
		t.Errorf("err = %v, want 2 lines rejected", err)
	}
	for _, want := range []string{
		"read 302  inserted 0  duplicates 300  rejected 2  in ",
		"rejected " + broken + ":1: solar_system_id missing",
		"rejected " + broken + ":2: body is not valid JSON",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	if _, err := runImportCmd(t, nil, "--to", a.URL(), fixture); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("without a token: err = %v, want unauthorized", err)
	}
	if _, err := runImportCmd(t, nil, fixture); err == nil {
		t.Error("without --to or --data-dir: no error")
	}
}

func TestImportDataDir(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	out, err := runImportCmd(t, nil, "--data-dir", dir, fixture, fixture)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "read 600  inserted 300  duplicates 300  rejected 0  in ") {
		t.Errorf("summary: %q", out)
	}
	store, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log, err := eventlog.Open(eventlog.Config{}, store)
	if err != nil {
		t.Fatal(err)
	}
	if st := log.Stats(); st.Events != 300 || st.Head != 300 {
		t.Errorf("stats after reopening: %+v", st)
	}
	if err := log.Close(); err != nil { // closes store
		t.Error(err)
	}
}
