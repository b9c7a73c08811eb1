package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/edge"
)

// runEdge runs `killfeed edge`: an edge node serving the HTTP, RedisQ and
// websocket API from the core at --core.
func runEdge(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg app.EdgeConfig
	var logLevel string
	fs := flag.NewFlagSet("killfeed edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Node.Core, "core", "", "host:port of the core's Proto.Actor remote endpoint (the core's --remote-listen); required")
	fs.StringVar(&cfg.Listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&cfg.RemoteListen, "remote-listen", app.DefaultEdgeRemoteListen, "host:port of this edge's Proto.Actor remote; the core pushes events to it")
	fs.StringVar(&cfg.RemoteAdvertise, "remote-advertise", "", "host:port the core reaches this edge at (empty: the bound address)")
	fs.DurationVar(&cfg.Node.PingInterval, "core-ping", edge.DefaultPingInterval, "how often the edge pings its core")
	fs.DurationVar(&cfg.Node.CoreTimeout, "core-timeout", edge.DefaultCoreTimeout, "how long a ping may go unanswered before the core counts as unreachable")
	fs.DurationVar(&cfg.Node.CoreGrace, "core-grace", edge.DefaultCoreGrace, "how long subscriptions stay open while the core is unreachable; past it websockets close with 1012")
	fs.IntVar(&cfg.Node.CacheEvents, "edge-cache", edge.DefaultCacheEvents, "recent events kept to answer since replays without asking the core")
	fs.StringVar(&cfg.IngestToken, "ingest-token", "", "bearer token required by POST /api/killmails (empty: none)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5e9, "how long a request waits for the core")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	servingDone := httpServingFlags(fs, httpServing{&cfg.ReadTimeout, &cfg.IdleTimeout, &cfg.DrainGrace, &cfg.CORSOrigins})
	websocketFlags(fs, &cfg.Websocket)
	addressLimitFlags(fs, &cfg.Limits)
	fs.StringVar(&cfg.ReadKeysFile, "read-keys-file", "", "file of read keys the read endpoints require, one a line, plain or sha256:<hex> (empty: open); deploy the core's file; SIGHUP re-reads it")
	fs.Var(invertedBool{&cfg.NoMetrics}, "metrics", "serve Prometheus metrics at GET /metrics (the edge's serving metrics and its link to the core)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, "usage: killfeed edge --core HOST:PORT [flags]\n\n"+
			"Serves the HTTP API, listen.php and the websockets from a core killfeed over\n"+
			"Proto.Actor remote (see docs/scaling.md).\n\n"+
			"Flags of edge (each also read from its environment variable when not given):\n")
		printFlags(w, fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usagef("edge: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if err := servingDone(); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = newLogger(stderr, logLevel); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg.Reload = hup
	warnUnknownEnv(cfg.Logger, fs, "edge")
	return app.RunEdge(ctx, cfg)
}
