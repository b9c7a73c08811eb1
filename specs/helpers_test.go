package specs_test

import (
	"context"
	"net/http"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// postKillmails POSTs body (new killmails) to base's /api/killmails, expects
// 201 with no duplicate, and returns their event ids.
func postKillmails(ctx context.Context, base string, body []byte) []uint64 {
	GinkgoHelper()
	r := post(ctx, base+"/api/killmails", body)
	Expect(r.Status).To(Equal(http.StatusCreated), "body: %s", r.Body)
	var acks []ack
	r.JSON(&acks)
	ids := make([]uint64, len(acks))
	for i, a := range acks {
		Expect(a.Duplicate).To(BeFalse())
		ids[i] = a.EventID
	}
	return ids
}
