package ingest

import (
	"errors"
	"net/http"

	"github.com/killfeed/killfeed/metrics"
)

// outcomeOf names the outcome of an upstream request for
// killfeed_upstream_requests_total.
func outcomeOf(err error) string {
	var se *StatusError
	switch {
	case err == nil:
		return metrics.OutcomeOK
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusNotFound:
			return metrics.OutcomeGap
		case se.Code == http.StatusTooManyRequests:
			return metrics.OutcomeRateLimited
		case se.Code >= 500:
			return metrics.OutcomeServerError
		}
		return metrics.OutcomeClientError
	case errors.Is(err, ErrBadInput):
		return metrics.OutcomeMalformed
	}
	return metrics.OutcomeError
}
