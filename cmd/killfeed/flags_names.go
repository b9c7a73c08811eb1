package main

import (
	"flag"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/names"
)

// namesFlags registers the flags of the names added beside ids.
func namesFlags(fs *flag.FlagSet, cfg *app.NamesConfig) {
	fs.BoolVar(&cfg.ESI, "names", true, "look up character, corporation and alliance names and tickers on ESI (--esi-url); false keeps the static names (ships, systems, factions) only")
	fs.StringVar(&cfg.Contact, "esi-contact", "", "contact (e-mail or in-game name) sent in the User-Agent of ESI requests, so that ESI's operators can reach you")
	fs.DurationVar(&cfg.Wait, "names-wait", names.DefaultWait, "longest time an incoming killmail waits for its names before it is delivered with the names at hand")
	fs.DurationVar(&cfg.TTL, "names-ttl", names.DefaultTTL, "how long a looked-up name or ticker is fresh; older ones are served while they are asked again")
	fs.IntVar(&cfg.MaxEntries, "names-cache", names.DefaultMaxEntries, "most names kept in memory (on disk storage, every name is also kept in --data-dir)")
}
