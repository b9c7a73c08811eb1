package transport

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// origins are Origin host patterns, as --ws-allowed-origins and
// --cors-origins give them: path.Match syntax on the host ("*.example.com"),
// or on scheme and host when the pattern has "://"; "*" matches any origin.
type origins []string

// newOrigins trims the patterns and drops empty ones.
func newOrigins(patterns []string) origins {
	var o origins
	for _, p := range patterns {
		if p = strings.TrimSpace(p); p != "" {
			o = append(o, p)
		}
	}
	return o
}

// any reports whether the patterns accept every origin.
func (o origins) any() bool {
	for _, p := range o {
		if p == "*" {
			return true
		}
	}
	return false
}

// match reports whether origin (an Origin header value) matches one of
// the patterns, the way the websocket handshake checks it.
func (o origins) match(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, p := range o {
		if p == "*" {
			return true
		}
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return true
		}
	}
	return false
}

// originAllowed is the websocket handshake's rule: no Origin (most clients
// that are not browsers), the request's own host, or an allowed pattern.
func (o origins) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(r.Host, u.Host) {
		return true
	}
	return o.match(origin)
}
