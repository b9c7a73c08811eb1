package webhook_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/internal/leaktest"
)

func TestWebhook(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "webhook")
}

// TestMain fails the package's tests when a goroutine they started is
// still running after the last one.
func TestMain(m *testing.M) {
	leaktest.Main(m, goleak.IgnoreTopFunction(
		"github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}
