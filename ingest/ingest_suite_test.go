package ingest_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/killfeed/killfeed/internal/leaktest"
)

func TestIngest(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ingest")
}

// TestMain checks for leaked goroutines after every test of the package,
// the specs and the fuzz targets' seeds alike.
func TestMain(m *testing.M) {
	leaktest.Main(m,
		// Proto.Actor and gRPC start these once per process and never stop them.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.(*eventStream).Subscribe.func1"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"),
	)
}
