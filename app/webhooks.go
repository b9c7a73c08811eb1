package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/names"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/transport"
	"github.com/killfeed/killfeed/universe"
	"github.com/killfeed/killfeed/webhook"
)

// parseWebhookFilter parses a webhook's filter as GET /api/killfeed parses
// its query: the same terms, the same errors; a term the API does not take
// is an error.
func parseWebhookFilter(terms url.Values) (webhook.Filter, error) {
	for k := range terms {
		if !selection.IsQueryParam(k) {
			return webhook.Filter{}, fmt.Errorf("%s: not a filter term (the terms of GET /api/killfeed: systems, constellations, regions, all, characters, corporations, alliances, factions, ships, groups, locations, labels, min_value, side)", strings.TrimSuffix(k, "[]"))
		}
	}
	loc, t, err := selection.ParseQuery(terms)
	if err != nil {
		return webhook.Filter{}, err
	}
	sel, err := selection.Build(universe.Default(), loc, t, transport.DefaultMaxSystems)
	if err != nil {
		return webhook.Filter{}, err
	}
	return webhook.Filter{Selection: sel, Entities: webhook.Entities{
		Characters: t.Characters, Corporations: t.Corporations, Alliances: t.Alliances, Factions: t.Factions,
	}}, nil
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

// startWebhooks starts hooks, which deliver killmails with the names
// render adds; nil without a webhooks file.
func startWebhooks(cfg Config, svc *actors.Service, reg *prometheus.Registry, hooks []webhook.Webhook, render *names.Renderer) *webhooks {
	if cfg.WebhooksFile == "" {
		return nil
	}
	src := webhook.NewLogSource(svc, transport.AllTopic)
	wc := cfg.Webhooks
	wc.Logger, wc.Registry = cfg.Logger, reg
	if render != nil && wc.Enrich == nil {
		wc.Enrich = func(_ context.Context, ev eventlog.Event) []byte { return render.Render(ev) }
	}
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
