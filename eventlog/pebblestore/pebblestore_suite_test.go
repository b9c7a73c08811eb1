package pebblestore_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/logtest"
	"github.com/killfeed/killfeed/eventlog/pebblestore"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestPebbleStore(t *testing.T) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode) // a child process of a crash spec; never returns
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "pebblestore")
}

// The shared store-semantics specs, on a fresh data dir each.
var _ = logtest.Specs("pebble", func(cfg eventlog.Config) *eventlog.Log {
	store, err := pebblestore.Open(GinkgoT().TempDir(), pebblestore.Options{})
	Expect(err).NotTo(HaveOccurred())
	l, err := eventlog.Open(cfg, store)
	Expect(err).NotTo(HaveOccurred())
	return l
})

// The same specs with a one-byte body cache: every read goes to the disk.
var _ = logtest.Specs("pebble, bodies read from disk", func(cfg eventlog.Config) *eventlog.Log {
	store, err := pebblestore.Open(GinkgoT().TempDir(), pebblestore.Options{})
	Expect(err).NotTo(HaveOccurred())
	cfg.HotBytes = 1
	l, err := eventlog.Open(cfg, store)
	Expect(err).NotTo(HaveOccurred())
	return l
})

var leakOpts []goleak.Option

var _ = BeforeSuite(func() {
	// Pebble's and the store's logs go to the spec's output.
	slog.SetDefault(slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
	leakOpts = []goleak.Option{goleak.IgnoreCurrent()}
})

var _ = AfterSuite(func() {
	// Every Store is closed by now: Pebble's goroutines must be gone.
	Expect(goleak.Find(leakOpts...)).To(Succeed())
})
