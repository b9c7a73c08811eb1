package ingest_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

const fixture = "../testdata/killmails.jsonl.gz"

// fixtureLines returns the raw lines of the committed fixture: 300 real ESI
// killmails with killmail_hash.
func fixtureLines() [][]byte {
	GinkgoHelper()
	f, err := os.Open(fixture)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	zr, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 4<<20)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	Expect(lines).To(HaveLen(300))
	return lines
}

func parse(raw []byte) killmail.Killmail {
	GinkgoHelper()
	km, err := killmail.Parse(raw)
	Expect(err).NotTo(HaveOccurred())
	return km
}

// startService starts the real actor service over a memory log.
func startService() *actors.Service {
	GinkgoHelper()
	log, err := eventlog.Open(eventlog.Config{}, nil)
	Expect(err).NotTo(HaveOccurred())
	svc, err := actors.Start(log, false, actors.Config{Logger: testLogger()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		svc.Stop()
		_ = log.Close()
	})
	return svc
}

// storedIDs returns the killmail ids of every event in systems, in event
// order.
func storedIDs(ctx context.Context, svc *actors.Service, systems []int64) []int64 {
	GinkgoHelper()
	b, err := svc.Fetch(ctx, &actors.FetchSince{Selection: selection.Of(systems)})
	Expect(err).NotTo(HaveOccurred())
	ids := make([]int64, len(b.Events))
	for i, ev := range b.Events {
		var v struct {
			ID int64 `json:"killmail_id"`
		}
		Expect(json.Unmarshal(ev.Killmail, &v)).To(Succeed())
		ids[i] = v.ID
	}
	return ids
}

func systemsOf(kms ...killmail.Killmail) []int64 {
	var s []int64
	for _, km := range kms {
		if !slices.Contains(s, km.SystemID) {
			s = append(s, km.SystemID)
		}
	}
	return s
}

// runRunner runs a source until the spec ends.
func runRunner(run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(run(ctx)).To(Succeed())
	}()
	DeferCleanup(func() { cancel(); <-done })
}
