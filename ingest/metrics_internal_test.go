package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/killfeed/killfeed/metrics"
)

func TestOutcomeOf(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                     metrics.OutcomeOK,
		&StatusError{Code: http.StatusNotFound}: metrics.OutcomeGap,
		&StatusError{Code: http.StatusTooManyRequests}:                       metrics.OutcomeRateLimited,
		&StatusError{Code: http.StatusServiceUnavailable}:                    metrics.OutcomeServerError,
		&StatusError{Code: http.StatusForbidden}:                             metrics.OutcomeClientError,
		fmt.Errorf("GET x: %w: not JSON", ErrBadInput):                       metrics.OutcomeMalformed,
		fmt.Errorf("wrapped: %w", &StatusError{Code: http.StatusBadGateway}): metrics.OutcomeServerError,
		context.DeadlineExceeded:                                             metrics.OutcomeError,
		errors.New("connection refused"):                                     metrics.OutcomeError,
	} {
		if got := outcomeOf(err); got != want {
			t.Errorf("outcomeOf(%v) = %s, want %s", err, got, want)
		}
	}
}
