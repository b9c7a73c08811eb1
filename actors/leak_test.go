package actors

import (
	"testing"

	"github.com/killfeed/killfeed/internal/leaktest"
)

// TestMain fails the package's tests when a goroutine they started is still
// running after the last one (see leaktest for the grace it is given).
func TestMain(m *testing.M) {
	leaktest.Main(m)
}
