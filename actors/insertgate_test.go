package actors

import (
	"runtime"
	"testing"
	"time"
)

// A reader of bodies on disk waits while an insert is in flight and goes
// on once it is answered; with none in flight it does not wait.
func TestInsertGateWaitsForInsertsInFlight(t *testing.T) {
	g := newInsertGate(time.Hour)
	pace := g.pacer()
	for range 3 * yieldEvery {
		pace() // none in flight
	}

	g.enter()
	g.enter()
	done := make(chan struct{})
	go func() {
		pace()
		close(done)
	}()
	g.leave()
	for range 100 { // let the reader run: it must still be waiting
		runtime.Gosched()
	}
	select {
	case <-done:
		t.Fatal("the reader went on with an insert in flight")
	default:
	}
	g.leave()
	<-done

	g.enter() // a new insert after the others drained
	again := make(chan struct{})
	go func() {
		pace()
		close(again)
	}()
	g.leave()
	<-again
}

// A reader waits for inserts in flight at most max at once, then reads on,
// so that a stream of inserts that never drains slows readers but never
// stops them.
func TestInsertGateWaitIsBounded(t *testing.T) {
	g := newInsertGate(time.Millisecond)
	g.enter()
	defer g.leave()
	pace := g.pacer()
	for range 3 * yieldEvery {
		pace() // returns, though the insert is still in flight
	}
}
