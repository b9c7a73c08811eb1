package main

import (
	"flag"
	"strings"

	"github.com/killfeed/killfeed/transport"
)

// websocketFlags registers the websocket flags (KILLFEED_WS_* in the
// environment).
func websocketFlags(fs *flag.FlagSet, cfg *transport.WebsocketConfig) {
	fs.IntVar(&cfg.MaxSystems, "ws-max-systems", transport.DefaultMaxSystems, "most systems one websocket connection follows")
	fs.IntVar(&cfg.Buffer, "ws-buffer", transport.DefaultWSBuffer, "events that may wait for one websocket connection before it is closed as a slow consumer (1008)")
	fs.Func("ws-allowed-origins", "comma-separated Origin host patterns accepted besides the request's own host (\"*\": any)", func(v string) error {
		cfg.AllowedOrigins = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
			}
		}
		return nil
	})
	fs.DurationVar(&cfg.PingInterval, "ws-ping-interval", transport.DefaultWSPingInterval, "keepalive ping interval of websocket connections (negative: off)")
	fs.DurationVar(&cfg.WriteTimeout, "ws-write-timeout", transport.DefaultWSWriteTimeout, "bound on every websocket write and on a ping's answer")
	fs.Int64Var(&cfg.ReadLimit, "ws-read-limit", transport.DefaultWSReadLimit, "largest client websocket frame in bytes (larger: closed with 1009)")
}
