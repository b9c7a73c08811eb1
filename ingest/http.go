package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/killfeed/killfeed/killmail"
)

// UserAgent is sent with every upstream request.
const UserAgent = "killfeed (+https://github.com/killfeed/killfeed)"

// maxBody bounds an upstream response: a killmail is at most
// killmail.MaxSize, and the wrappers around it are small.
const maxBody = 4 * killmail.MaxSize

// get fetches url within timeout. A 200 returns the body; any other status
// is a *StatusError. A body over maxBody is ErrBadInput.
func get(ctx context.Context, client *http.Client, url string, timeout time.Duration) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
		return nil, resp.Header, &StatusError{
			URL:        url,
			Code:       resp.StatusCode,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body:       strings.TrimSpace(string(snippet)),
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, resp.Header, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if len(body) > maxBody {
		return nil, resp.Header, fmt.Errorf("GET %s: %w: body larger than %d bytes", url, ErrBadInput, maxBody)
	}
	return body, resp.Header, nil
}

// retryAfter parses a Retry-After header: delay-seconds (at most
// maxRetryAfter) or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		if s <= 0 {
			return 0
		}
		// Capped before the multiplication, which a huge value overflows.
		return time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryAfterOf returns the Retry-After of a *StatusError, else 0.
func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// statusOf returns the HTTP status of a *StatusError, else 0.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func newClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

func validURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
