package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestFormatISK(t *testing.T) {
	for v, want := range map[float64]string{
		1.25e9: "1.25B ISK", 12.5e6: "12.50M ISK", 950e3: "950.00K ISK", 3.1e12: "3.10T ISK", 12: "12 ISK",
	} {
		if got := formatISK(v); got != want {
			t.Errorf("formatISK(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "3")
	if got := retryAfter(h, []byte(`{"retry_after":0.25}`)); got != 250*time.Millisecond {
		t.Errorf("Discord's retry_after: got %v", got)
	}
	if got := retryAfter(h, []byte(`rate limited`)); got != 3*time.Second {
		t.Errorf("Retry-After seconds: got %v", got)
	}
	h.Set("Retry-After", time.Now().Add(time.Hour+time.Minute).UTC().Format(http.TimeFormat))
	if got := retryAfter(h, nil); got != maxWait {
		t.Errorf("a date past the cap: got %v", got)
	}
	h = http.Header{}
	h.Set("X-RateLimit-Remaining", "1")
	h.Set("X-RateLimit-Reset-After", "2.5")
	if got := resetAfter(h); got != 0 {
		t.Errorf("a bucket not empty: got %v", got)
	}
	h.Set("X-RateLimit-Remaining", "0")
	if got := resetAfter(h); got != 2500*time.Millisecond {
		t.Errorf("an empty bucket: got %v", got)
	}
}

func TestPackEmbeds(t *testing.T) {
	small := discordEmbed{Title: "x"}
	if n := packEmbeds(make([]discordEmbed, 25)); n != 10 {
		t.Errorf("ten at most: got %d", n)
	}
	big := discordEmbed{Description: string(make([]rune, 4000))}
	if n := packEmbeds([]discordEmbed{big, big, small}); n != 1 {
		t.Errorf("6000 characters at most: got %d", n)
	}
}
