package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/internal/pause"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
)

// HTTPSink imports into a running killfeed through POST /api/killmails,
// one JSON array per batch.
type HTTPSink struct {
	// URL is the instance's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token is the ingest bearer token; "" sends none.
	Token string
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// Retries is how often a failed request (connection error, 5xx, 429)
	// is retried before the import stops; 0 means 5.
	Retries int
	// BackoffMin bounds the first wait before a retry; 0 means 1s.
	BackoffMin time.Duration
}

// Insert implements Sink.
func (s HTTPSink) Insert(ctx context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error) {
	n := 2
	for _, km := range kms {
		n += len(km.JSON) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, '[')
	for i, km := range kms {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, km.JSON...)
	}
	body = append(body, ']')

	retries := s.Retries
	if retries <= 0 {
		retries = 5
	}
	b := backoff{min: s.BackoffMin, max: 30 * time.Second}
	if b.min <= 0 {
		b.min = time.Second
	}
	for attempt := 0; ; attempt++ {
		res, err := s.post(ctx, body, len(kms))
		var se *StatusError
		retry := err != nil && ctx.Err() == nil && !errors.Is(err, ErrUnauthorized) &&
			!errors.As(err, new(*RejectError)) &&
			(!errors.As(err, &se) || se.Code >= 500 || se.Code == http.StatusTooManyRequests)
		if !retry || attempt >= retries {
			return res, err
		}
		wait := b.next()
		if ra := retryAfterOf(err); ra > 0 {
			wait = min(ra, maxRetryAfter)
		}
		if !pause.For(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

func (s HTTPSink) post(ctx context.Context, body []byte, n int) ([]eventlog.AppendResult, error) {
	url := strings.TrimRight(s.URL, "/") + "/api/killmails"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(metrics.SourceHeader, metrics.SourceImport) // counted as an import, not as any POST
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read answer: %w", url, err)
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusCreated:
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, fmt.Errorf("POST %s: %w: %s (check --token)", url, ErrUnauthorized, errorText(data))
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge ||
		code == http.StatusUnprocessableEntity:
		return nil, &RejectError{Reason: errorText(data)}
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		return nil, &StatusError{Method: http.MethodPost, URL: url, Code: code,
			Body: errorText(data) + " (is --to the base URL of a killfeed, such as http://127.0.0.1:8080?)"}
	default:
		return nil, &StatusError{Method: http.MethodPost, URL: url, Code: code, Body: errorText(data),
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	var answers []struct {
		EventID   uint64 `json:"event_id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &answers); err != nil {
		return nil, fmt.Errorf("POST %s: decode answer: %w", url, err)
	}
	if len(answers) != n {
		return nil, fmt.Errorf("POST %s: %d answers for %d killmails", url, len(answers), n)
	}
	res := make([]eventlog.AppendResult, n)
	for i, a := range answers {
		res[i] = eventlog.AppendResult{EventID: a.EventID, Duplicate: a.Duplicate}
	}
	return res, nil
}

// errorText returns the "error" of a JSON error body, else the body's start.
func errorText(data []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if e.Message != "" {
			return e.Message
		}
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
