package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/killfeed/killfeed/eventlog"
)

// Headers of a json delivery.
const (
	HeaderEventID   = "X-Killfeed-Event-Id"
	HeaderSignature = "X-Killfeed-Signature"
)

// jsonBody is {"event_id":…,"system_id":…,"killmail":…}, with
// "missed":true when events before it were dropped undelivered.
func jsonBody(ev eventlog.Event, missed bool) []byte {
	b := ev.AppendJSON(make([]byte, 0, len(ev.Killmail)+80))
	if missed {
		b = append(b[:len(b)-1], `,"missed":true}`...)
	}
	return b
}

// Sign is the X-Killfeed-Signature of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func jsonHeader(id uint64, secret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderEventID, strconv.FormatUint(id, 10))
	if secret != "" {
		h.Set(HeaderSignature, Sign(secret, body))
	}
	return h
}
