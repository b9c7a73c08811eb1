package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/killfeed/killfeed/internal/pause"
)

func TestFor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !pause.For(ctx, 0) || !pause.For(ctx, time.Millisecond) {
		t.Fatal("a live context's pause did not pass")
	}
	cancel()
	if pause.For(ctx, 0) || pause.For(ctx, time.Hour) {
		t.Fatal("a done context's pause passed")
	}
}
