package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

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
			if err := setFromEnv(fs, f, v); err != nil {
				errs = append(errs, err)
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
	minRetention := fs.Duration("min-retention", app.DefaultMinRetention, "keep events this recent even when every client has read them, for new clients to backfill (0: none)")
	fs.StringVar(&cfg.IngestToken, "ingest-token", "", "bearer token required by POST /api/killmails (empty: none)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5e9, "how long a request waits for the store")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	servingDone := httpServingFlags(fs, httpServing{&cfg.ReadTimeout, &cfg.IdleTimeout, &cfg.DrainGrace, &cfg.CORSOrigins})
	websocketFlags(fs, &cfg.Websocket)
	ingestFlags(fs, &cfg.Ingest)
	namesFlags(fs, &cfg.Names)
	limitFlags(fs, &cfg)
	webhookFlags(fs, &cfg)
	fs.Var(invertedBool{&cfg.NoMetrics}, "metrics", "serve Prometheus metrics at GET /metrics")
	fs.Usage = serveUsage(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
		return usagef("serve: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if err := servingDone(); err != nil {
		return err
	}
	switch {
	case *minRetention < 0:
		return fmt.Errorf("min-retention: must not be negative, got %s", *minRetention)
	case *minRetention == 0:
		cfg.MinRetention = -1 // none
	default:
		cfg.MinRetention = *minRetention
	}
	var err error
	if cfg.Logger, err = newLogger(stderr, logLevel); err != nil {
		return err
	}
	warnUnknownEnv(cfg.Logger, fs, "serve")
	defer reloadOnSIGHUP(&cfg)()
	return app.Run(ctx, cfg)
}

// orNone maps a flag's 0 ("no limit") to the negative duration that means
// none in app.Config, whose zero value means the default.
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// newLogger is the text logger on w at the --log-level named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
