package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/killfeed/killfeed/app"
)

// envName is the environment variable of a flag: --max-age → KILLFEED_MAX_AGE.
func envName(flagName string) string {
	return "KILLFEED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	return errors.Join(errs...)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg app.Config
	var logLevel string
	fs := flag.NewFlagSet("killfeed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&cfg.Storage, "storage", app.StorageDisk, "storage backend: disk (embedded, in --data-dir) or memory (ephemeral)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./killfeed-data", "data directory of the disk storage")
	fs.DurationVar(&cfg.GCInterval, "gc-interval", 60e9, "how often retention runs")
	fs.DurationVar(&cfg.OffsetFlush, "offset-flush", 1e9, "longest time a changed client offset stays unpersisted")
	fs.DurationVar(&cfg.ClientTTL, "client-ttl", 24*3600e9, "idle time after which a client expires")
	fs.IntVar(&cfg.MaxEvents, "max-events", 1_000_000, "most events retained")
	fs.Int64Var(&cfg.MaxBytes, "max-bytes", 2<<30, "most killmail bytes retained")
	fs.DurationVar(&cfg.MaxAge, "max-age", 72*3600e9, "oldest event retained; also how long killmail ids are remembered")
	fs.StringVar(&cfg.IngestToken, "ingest-token", "", "bearer token required by POST /api/killmails (empty: none)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5e9, "how long a request waits for the store")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	websocketFlags(fs, &cfg.Websocket)
	ingestFlags(fs, &cfg.Ingest)
	namesFlags(fs, &cfg.Names)
	limitFlags(fs, &cfg)
	fs.Var(invertedBool{&cfg.NoMetrics}, "metrics", "serve Prometheus metrics at GET /metrics")
	fs.Usage = serveUsage(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
		return usagef("serve: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = newLogger(stderr, logLevel); err != nil {
		return err
	}
	defer reloadOnSIGHUP(&cfg)()
	return app.Run(ctx, cfg)
}

// newLogger is the text logger on w at the --log-level named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
