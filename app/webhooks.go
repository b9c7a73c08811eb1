package app

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/universe"
	"github.com/killfeed/killfeed/webhook"
)

// webhookTerms are the filter terms a webhook takes: those GET
// /api/killfeed takes.
var webhookTerms = []string{"systems", "constellations", "regions", "all"}

// parseWebhookFilter parses a webhook's filter as GET /api/killfeed parses
// its query; a term the API does not take is an error.
func parseWebhookFilter(terms url.Values) (webhook.Filter, error) {
	for k := range terms {
		if !slices.Contains(webhookTerms, strings.TrimSuffix(k, "[]")) {
			return webhook.Filter{}, fmt.Errorf("%s: not a filter term (%s)", strings.TrimSuffix(k, "[]"), strings.Join(webhookTerms, ", "))
		}
	}
	systems, err := transport.ParseSelection(universe.Default(), terms, 0)
	if err != nil {
		return webhook.Filter{}, err
	}
	return webhook.Filter{Systems: systems}, nil
}

// loadWebhooks reads the webhooks file; nil without one.
func (c Config) loadWebhooks() ([]webhook.Webhook, error) {
	if c.WebhooksFile == "" {
		return nil, nil
	}
	hooks, err := webhook.LoadFile(c.WebhooksFile, parseWebhookFilter)
	if err != nil {
		return nil, fmt.Errorf("webhooks-file: %w", err)
	}
	return hooks, nil
}

// webhooks runs the configured webhooks over the store.
type webhooks struct {
	src *webhook.LogSource
	mgr *webhook.Manager
}

// startWebhooks starts hooks; nil without a webhooks file.
func startWebhooks(cfg Config, svc *actors.Service, reg *prometheus.Registry, hooks []webhook.Webhook) *webhooks {
	if cfg.WebhooksFile == "" {
		return nil
	}
	src := webhook.NewLogSource(svc, transport.AllTopic)
	wc := cfg.Webhooks
	wc.Logger, wc.Registry = cfg.Logger, reg
	mgr := webhook.NewManager(src, wc)
	mgr.Apply(hooks)
	cfg.Logger.Info("webhooks started", "file", cfg.WebhooksFile, "webhooks", len(hooks))
	return &webhooks{src: src, mgr: mgr}
}

// status is what GET /api/webhooks lists.
func (w *webhooks) status() any {
	if w == nil {
		return []webhook.Status{}
	}
	return w.mgr.Status()
}

// reload applies the webhooks file again; on an error the running set
// stays as it was.
func (a *App) reloadWebhooks() error {
	if a.hooks == nil {
		return nil
	}
	hooks, err := a.cfg.loadWebhooks()
	if err != nil {
		a.cfg.Logger.Error("reload failed; the webhooks are unchanged", "err", err)
		return err
	}
	a.hooks.mgr.Apply(hooks)
	a.cfg.Logger.Info("webhooks reloaded", "webhooks", len(hooks))
	return nil
}

// close stops every webhook; their requests in flight are abandoned and
// delivered again at the next start.
func (w *webhooks) close() {
	if w == nil {
		return
	}
	w.mgr.Close()
	w.src.Close()
}
