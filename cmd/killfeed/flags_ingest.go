package main

import (
	"flag"

	"github.com/killfeed/killfeed/app"
)

// ingestFlags registers the upstream-source flags.
func ingestFlags(fs *flag.FlagSet, cfg *app.IngestConfig) {}
