package main

import (
	"flag"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/ingest"
)

// ingestFlags registers the upstream-source flags.
func ingestFlags(fs *flag.FlagSet, cfg *app.IngestConfig) {
	fs.BoolVar(&cfg.R2Z2Enabled, "r2z2", true, "poll zKillboard's R2Z2 feed")
	fs.StringVar(&cfg.R2Z2.URL, "r2z2-url", ingest.DefaultR2Z2URL, "R2Z2 feed base URL")
	fs.DurationVar(&cfg.R2Z2.Idle, "r2z2-idle", ingest.DefaultR2Z2Idle, "wait after a 404 (next file not there yet) before asking again")
	fs.Float64Var(&cfg.R2Z2.Rate, "r2z2-rate", ingest.DefaultR2Z2Rate, "most R2Z2 requests in any one-second window")
	fs.Uint64Var(&cfg.R2Z2.Start, "r2z2-start", 0, "first R2Z2 sequence when none is stored (0: the current sequence.json)")
	fs.DurationVar(&cfg.R2Z2.Timeout, "r2z2-timeout", ingest.DefaultR2Z2Timeout, "timeout of one R2Z2 request")

	fs.StringVar(&cfg.RedisQ.URL, "redisq-url", "", "RedisQ-style listen endpoint to poll (empty: off)")
	fs.StringVar(&cfg.RedisQ.Queue, "redisq-queue", "", "RedisQ queueID of this consumer (required with --redisq-url)")
	fs.StringVar(&cfg.RedisQ.ESI.URL, "esi-url", ingest.DefaultESIURL, "ESI base URL, for RedisQ packages without the killmail")

	fs.StringVar(&cfg.Remote.Listen, "remote-listen", "", "host:port of the Proto.Actor remote ingest endpoint (empty: off)")
	fs.StringVar(&cfg.Remote.Advertise, "remote-advertise", "", "host:port other nodes reach the remote endpoint at (empty: the bound address)")
	fs.StringVar(&cfg.Remote.Name, "remote-name", ingest.DefaultRemoteName, "name of the remote ingest actor")
}
