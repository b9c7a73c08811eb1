package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/ingest"
)

const importUsage = `usage: killfeed import (--to URL | --data-dir DIR) [flags] FILE…

Imports JSON Lines files (plain or gzip; a JSON array or pretty-printed JSON
is taken too) of ESI killmails, R2Z2 objects or RedisQ packages, in file
order, into a running killfeed (--to) or, while no killfeed runs on it, into
a data directory (--data-dir). FILE - reads standard input. Exit status 1
when any line was rejected, 2 on a bad command line.

`

// runImport runs `killfeed import FILE…`.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		to, token, dataDir string
		batchBytes         int
		maxRejects         int
		parallel           int
	)
	fs := flag.NewFlagSet("killfeed import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), importUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&to, "to", "", "base URL of a running killfeed, e.g. http://127.0.0.1:8080")
	fs.StringVar(&token, "token", "", "ingest bearer token for --to (default $KILLFEED_INGEST_TOKEN)")
	fs.StringVar(&dataDir, "data-dir", "", "data directory of the disk storage to import into offline")
	fs.IntVar(&batchBytes, "batch-bytes", ingest.DefaultBatchBytes, "killmail bytes per batch (the server accepts up to 32 MiB)")
	fs.IntVar(&parallel, "parallel", 1, "batches in flight at once; above 1, batches may be stored out of file order")
	fs.IntVar(&maxRejects, "max-rejects", ingest.DefaultMaxRejects, "rejected lines listed in the summary (all are counted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	switch {
	case len(files) == 0:
		fs.Usage()
		return usagef("import: no files given (- reads standard input)")
	case (to == "") == (dataDir == ""):
		fs.Usage()
		return usagef("import: give exactly one of --to and --data-dir")
	case batchBytes <= 0 || batchBytes > 32<<20:
		return usagef("import: --batch-bytes: must be in 1…%d, got %d", 32<<20, batchBytes)
	}
	if to != "" {
		var err error
		if to, err = baseURL(to); err != nil {
			fs.Usage()
			return usagef("import: --to: %v", err)
		}
	}
	if token == "" {
		token = getenv("KILLFEED_INGEST_TOKEN")
	}

	var sink ingest.Sink
	if to != "" {
		sink = ingest.HTTPSink{URL: to, Token: token, Client: &http.Client{Timeout: 5 * time.Minute}}
	} else {
		store, err := pebblestore.Open(dataDir, pebblestore.Options{
			Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		log, err := eventlog.Open(eventlog.Config{}, store)
		if err != nil {
			_ = store.Close()
			return fmt.Errorf("import: %w", err)
		}
		defer func() {
			if err := log.Close(); err != nil && !errors.Is(err, eventlog.ErrClosed) { // closes store
				fmt.Fprintln(stderr, "killfeed import: close:", err)
			}
		}()
		sink = ingest.LogSink{Log: log}
	}

	cfg := ingest.ImportConfig{BatchBytes: batchBytes, MaxRejects: maxRejects, Parallel: parallel}
	tty := isTerminal(stderr)
	start := time.Now()
	if tty {
		cfg.Progress = func(s ingest.ImportStats) {
			rate := float64(s.Read) / max(time.Since(start).Seconds(), 1e-3)
			fmt.Fprintf(stderr, "\r\033[Kread %d  inserted %d  duplicates %d  rejected %d  (%.0f/s)",
				s.Read, s.Inserted, s.Duplicates, s.Rejected, rate)
		}
	}
	res, err := ingest.Import(ctx, sink, files, cfg)
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	printSummary(stdout, res)
	if err != nil {
		return err
	}
	if res.Rejected > 0 {
		return fmt.Errorf("import: %d lines rejected", res.Rejected)
	}
	return nil
}

// baseURL is --to as the base URL the import posts to: a bare host:port
// gets http://, and anything but an http or https URL with a host is
// refused at once rather than retried.
func baseURL(to string) (string, error) {
	if !strings.Contains(to, "://") {
		to = "http://" + to
	}
	u, err := url.Parse(to)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL such as http://127.0.0.1:8080", to)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: the scheme must be http or https", to)
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", to)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func printSummary(w io.Writer, res ingest.ImportResult) {
	rate := float64(res.Read) / max(res.Elapsed.Seconds(), 1e-3)
	fmt.Fprintf(w, "read %d  inserted %d  duplicates %d  rejected %d  in %s (%.0f killmails/s)\n",
		res.Read, res.Inserted, res.Duplicates, res.Rejected, res.Elapsed.Round(time.Millisecond), rate)
	for _, r := range res.Rejects {
		fmt.Fprintf(w, "rejected %s\n", r)
	}
	if more := res.Rejected - int64(len(res.Rejects)); more > 0 {
		fmt.Fprintf(w, "… and %d more rejected lines (raise --max-rejects to list them)\n", more)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
