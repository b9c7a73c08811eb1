package webhook_test

import (
	"context"
	"encoding/json"
	"net/url"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/webhook"
)

// harness is a running store (memory log, real actors) with a webhook
// Manager over it.
type harness struct {
	log *eventlog.Log
	svc *actors.Service
	src *webhook.LogSource
	mgr *webhook.Manager
}

// fastRetries are delays short enough for tests.
var fastRetries = webhook.Config{BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Timeout: 2 * time.Second}

func newHarness(cfg webhook.Config, lc eventlog.Config) *harness {
	GinkgoHelper()
	log, err := eventlog.Open(lc, nil)
	Expect(err).NotTo(HaveOccurred())
	svc, err := actors.Start(log, false, actors.Config{Topics: func(ev eventlog.Event) []string {
		return []string{"all", actors.SystemTopic(ev.SystemID)}
	}})
	Expect(err).NotTo(HaveOccurred())
	h := &harness{log: log, svc: svc, src: webhook.NewLogSource(svc, "all")}
	h.mgr = webhook.NewManager(h.src, cfg)
	DeferCleanup(func() {
		h.mgr.Close()
		h.src.Close()
		svc.Stop()
		_ = log.Close()
	})
	return h
}

// next hands out fixture killmails, each once per test binary.
var next atomic.Int64

// insert stores n killmails (in system when it is not 0) and returns
// their event ids.
func (h *harness) insert(ctx context.Context, n int, system int64) []uint64 {
	GinkgoHelper()
	return h.insertFixtures(ctx, system, make([]int, n)...)
}

// insertFixtures stores the fixture killmails of the indexes (0: the next
// one) under fresh killmail ids, in system when it is not 0.
func (h *harness) insertFixtures(ctx context.Context, system int64, indexes ...int) []uint64 {
	GinkgoHelper()
	all := fixture.Killmails()
	kms := make([]killmail.Killmail, len(indexes))
	for i := range kms {
		k := int(next.Add(1))
		km := all[k%len(all)]
		if indexes[i] > 0 {
			km = all[indexes[i]]
		}
		// A fresh killmail id each time, so that nothing is a duplicate.
		var obj map[string]any
		Expect(json.Unmarshal(km.JSON, &obj)).To(Succeed())
		obj["killmail_id"] = 1_000_000_000 + k
		if system != 0 {
			obj["solar_system_id"] = system
		}
		obj["zkb"] = map[string]any{"totalValue": 1.25e9 + float64(k), "labels": []string{"pvp"}}
		b, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		kms[i], err = killmail.Parse(b)
		Expect(err).NotTo(HaveOccurred())
	}
	res, err := h.svc.Insert(ctx, kms, nil)
	Expect(err).NotTo(HaveOccurred())
	ids := make([]uint64, len(res))
	for i, r := range res {
		ids[i] = r.EventID
	}
	return ids
}

// hook is a webhook entry following everything (or systems).
func hook(name, u, format, secret string, systems ...int64) webhook.Webhook {
	terms := url.Values{"all": {"true"}}
	if len(systems) == 0 {
		systems = []int64{eventlog.AllSystems}
	} else {
		terms = url.Values{}
		for _, s := range systems {
			terms.Add("systems[]", itoa(s))
		}
	}
	return webhook.Webhook{Name: name, URL: u, Format: format, Secret: secret,
		Filter: webhook.Filter{Terms: terms, Selection: selection.Of(systems)}}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// status is the named webhook's status.
func (h *harness) status(name string) webhook.Status {
	for _, s := range h.mgr.Status() {
		if s.Name == name {
			return s
		}
	}
	return webhook.Status{}
}

// waitRunning waits until the named webhook joined the log.
func (h *harness) waitRunning(ctx context.Context, name string) {
	GinkgoHelper()
	Eventually(func() string { return h.status(name).State }).WithContext(ctx).ShouldNot(Or(Equal(webhook.StateStarting), BeEmpty()))
}
