package specs_test

import (
	"os"

	. "github.com/onsi/gomega"
)

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return b
}
