// Package leaktest fails a test binary that leaves goroutines running, as
// goleak.VerifyTestMain does, but first gives goroutines on their way out a
// few seconds to end. Proto.Actor's dead-letter throttle, for one, keeps a
// goroutine for its interval (1 s) after a dead letter, and a test that
// stops an actor system may well end within that second; such a goroutine
// is not a leak, one still running after Grace is.
package leaktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Grace is how long goroutines still running after the last test get to
// end before they count as leaked.
const Grace = 5 * time.Second

// Main runs the tests and exits, with status 1 when they passed but left
// goroutines (other than those opts ignore) running for longer than Grace.
// Call it from TestMain.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		err := goleak.Find(opts...)
		for deadline := time.Now().Add(Grace); err != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			err = goleak.Find(opts...)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines still running %s after the last test: %v\n", Grace, err)
			code = 1
		}
	}
	os.Exit(code)
}
