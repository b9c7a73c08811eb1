package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/webhook"
)

// limitFlags registers the abuse-resistance flags.
func limitFlags(fs *flag.FlagSet, cfg *app.Config) {
	addressLimitFlags(fs, &cfg.Limits)
	fs.IntVar(&cfg.MaxClients, "max-clients", app.DefaultMaxClients, "live polling clients (client_id, listen.php queues); new ones past it are refused (negative: off)")
	fs.StringVar(&cfg.ReadKeysFile, "read-keys-file", "", "file of read keys the read endpoints require, one a line, plain or sha256:<hex> (empty: open); SIGHUP re-reads it")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token of the admin routes (GET /api/webhooks); empty: no admin route")
}

// webhookFlags registers the webhook flags.
func webhookFlags(fs *flag.FlagSet, cfg *app.Config) {
	fs.StringVar(&cfg.WebhooksFile, "webhooks-file", "", "YAML file of webhooks the core delivers killmails to (see docs/webhooks.md); SIGHUP re-reads it")
	fs.DurationVar(&cfg.Webhooks.Timeout, "webhook-timeout", webhook.DefaultTimeout, "longest a webhook request may take")
	fs.DurationVar(&cfg.Webhooks.BackoffMax, "webhook-backoff-max", webhook.DefaultBackoffMax, "longest wait between retries of a failing webhook")
}

// addressLimitFlags registers the per-address and connection limits, which
// a core and an edge both apply to their own clients.
func addressLimitFlags(fs *flag.FlagSet, l *transport.LimitsConfig) {
	fs.Float64Var(&l.RatePerIP, "rate-per-ip", transport.DefaultRatePerIP, "sustained read requests per second of one client address (negative: off)")
	fs.IntVar(&l.RateBurst, "rate-burst", transport.DefaultRateBurst, "burst of read requests of one client address above --rate-per-ip")
	fs.IntVar(&l.LongPollsPerIP, "longpolls-per-ip", transport.DefaultLongPollsPerIP, "concurrent long-polls (wait > 0, listen.php) of one client address (negative: off)")
	fs.IntVar(&l.WSPerIP, "ws-per-ip", transport.DefaultWSPerIP, "open websockets of one client address (negative: off)")
	fs.IntVar(&l.WSTotal, "ws-total", transport.DefaultWSTotal, "open websockets in total (negative: off)")
	fs.Func("trusted-proxies", "comma-separated CIDR prefixes of proxies whose X-Forwarded-For is believed (empty: the header is ignored)", func(v string) error {
		p, err := transport.ParsePrefixes(v)
		if err != nil {
			return fmt.Errorf("trusted-proxies: %w", err)
		}
		l.TrustedProxies = p
		return nil
	})
}

// reloadOnSIGHUP makes SIGHUP reload the read keys and the webhooks; the returned function
// stops listening for it.
func reloadOnSIGHUP(cfg *app.Config) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cfg.Reload = hup
	return func() { signal.Stop(hup) }
}
