// Package pause owns the one way killfeed's loops wait: for a duration or
// until their context is done, whichever comes first.
package pause

import (
	"context"
	"time"
)

// For waits d or until ctx is done; it reports whether d passed (false when
// ctx is done). A d of 0 or less does not wait.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
