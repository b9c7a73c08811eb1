package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/transport"
)

// httpServing is where the HTTP serving flags go: the same four fields of
// app.Config and app.EdgeConfig.
type httpServing struct {
	ReadTimeout, IdleTimeout, DrainGrace *time.Duration
	CORSOrigins                          *[]string
}

// httpServingFlags defines --read-timeout, --idle-timeout, --drain-grace and
// --cors-origins, which serve and edge share. The returned func checks them
// once parsed and stores them in to, where 0 ("none" on the command line)
// becomes the negative duration that means none in the app configs.
func httpServingFlags(fs *flag.FlagSet, to httpServing) func() error {
	readTimeout := fs.Duration("read-timeout", transport.DefaultReadTimeout, "how long a request body may take to arrive whole, 408 past it (0: no limit); long-polls and websockets are not cut")
	idleTimeout := fs.Duration("idle-timeout", app.DefaultIdleTimeout, "close a keep-alive connection idle this long between requests (0: never)")
	drainGrace := fs.Duration("drain-grace", app.DefaultDrainGrace, "on SIGTERM, how long /readyz answers 503 before the listener closes (0: close at once)")
	fs.Func("cors-origins", "comma-separated Origin patterns whose pages may read the HTTP API from a browser, as --ws-allowed-origins (\"*\": any; empty: no CORS headers)", func(v string) error {
		*to.CORSOrigins = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				*to.CORSOrigins = append(*to.CORSOrigins, o)
			}
		}
		return nil
	})
	return func() error {
		for _, f := range []struct {
			name string
			d    *time.Duration
			to   *time.Duration
		}{{"read-timeout", readTimeout, to.ReadTimeout}, {"idle-timeout", idleTimeout, to.IdleTimeout}, {"drain-grace", drainGrace, to.DrainGrace}} {
			if *f.d < 0 {
				return fmt.Errorf("%s: must not be negative, got %s", f.name, *f.d)
			}
			*f.to = orNone(*f.d)
		}
		return nil
	}
}
