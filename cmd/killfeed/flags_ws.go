package main

import (
	"flag"

	"github.com/killfeed/killfeed/transport"
)

// websocketFlags registers the websocket flags.
func websocketFlags(fs *flag.FlagSet, cfg *transport.WebsocketConfig) {}
