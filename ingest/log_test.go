package ingest_test

import (
	"log/slog"

	. "github.com/onsi/ginkgo/v2"
)

// testLogger writes to the spec's output, shown when a spec fails.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
