package ingest

import "golang.org/x/time/rate"

// Waiter is waiter, for the tests of package ingest_test.
type Waiter = waiter

// WrapR2Z2Limiter replaces p's limiter with what wrap makes of it, before
// Run. The tests see the limiter's reservations through it.
func WrapR2Z2Limiter(p *R2Z2, wrap func(*rate.Limiter) Waiter) {
	p.limiter = wrap(p.limiter.(*rate.Limiter))
}
