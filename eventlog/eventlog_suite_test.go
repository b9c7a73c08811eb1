package eventlog_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/logtest"
)

func TestEventlog(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "eventlog")
}

var _ = logtest.Specs("memory", func(cfg eventlog.Config) *eventlog.Log {
	log, err := eventlog.Open(cfg, nil)
	Expect(err).NotTo(HaveOccurred())
	return log
})
