// Package fakeesi is an ESI stand-in for tests and benchmarks: the name
// endpoints killfeed uses (POST /universe/names/, GET /corporations/{id}/,
// GET /alliances/{id}/), with the faults the real one has (5xx, 420 with
// the error-limit headers, 429, slowness, ids it does not know).
package fakeesi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

// Server is a fake ESI. Its fields are set through its methods, which are
// safe for concurrent use.
type Server struct {
	*httptest.Server

	mu sync.Mutex
	// every positive id is known, with made-up names, unless listed in unknown
	knowAll bool
	names   map[int64]string // characters
	corps   map[int64][2]string
	allies  map[int64][2]string
	unknown map[int64]bool
	// faults
	status     int           // answer every request with this status (0: none)
	retryAfter string        // Retry-After / X-ESI-Error-Limit-Reset sent with status
	remain     int           // X-ESI-Error-Limit-Remain sent (-1: none)
	hold       chan struct{} // requests wait until it is closed
	// what was asked
	calls    map[string]int // by endpoint: names, corporations, alliances
	asked    map[int64]int  // ids asked, every endpoint
	agents   map[string]bool
	inflight int
}

// New starts a fake ESI that knows nothing yet. With knowAll it knows every
// positive id: character N is "Character N", corporation N "Corporation
// N" [CN], alliance N "Alliance N" <AN>.
func New(knowAll bool) *Server {
	s := &Server{knowAll: knowAll, names: map[int64]string{}, corps: map[int64][2]string{},
		allies: map[int64][2]string{}, unknown: map[int64]bool{}, remain: -1,
		calls: map[string]int{}, asked: map[int64]int{}, agents: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Character makes id a character named name.
func (s *Server) Character(id int64, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[id] = name
}

// Corporation makes id a corporation.
func (s *Server) Corporation(id int64, name, ticker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corps[id] = [2]string{name, ticker}
}

// Alliance makes id an alliance.
func (s *Server) Alliance(id int64, name, ticker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allies[id] = [2]string{name, ticker}
}

// Unknown makes ids unknown (404), even with knowAll.
func (s *Server) Unknown(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.unknown[id] = true
	}
}

// Fail answers every request with status (0: stop failing); for 420 and
// 429 retry is sent as X-ESI-Error-Limit-Reset and Retry-After.
func (s *Server) Fail(status int, retry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.retryAfter = status, retry
}

// ErrorLimitRemain sends X-ESI-Error-Limit-Remain: n with every answer
// (-1: not at all), and X-ESI-Error-Limit-Reset: reset.
func (s *Server) ErrorLimitRemain(n int, reset string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remain, s.retryAfter = n, reset
}

// Hold makes requests wait until Release (or until their client gives up).
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets held requests go on.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Calls returns the requests made to endpoint ("names", "corporations",
// "alliances"; "" for all of them).
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if endpoint == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[endpoint]
}

// Asked returns how many times id was asked about.
func (s *Server) Asked(id int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[id]
}

// InFlight is the number of requests being answered (held ones included).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight
}

// UserAgents lists the User-Agent headers seen.
func (s *Server) UserAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for a := range s.agents {
		out = append(out, a)
	}
	return out
}

// Reset forgets the counts.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	clear(s.asked)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var endpoint string
	var id int64
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodPost && path == "/universe/names":
		endpoint = "names"
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/corporations/"):
		endpoint = "corporations"
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/alliances/"):
		endpoint = "alliances"
	default:
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	if endpoint != "names" {
		n, err := strconv.ParseInt(path[strings.LastIndexByte(path, '/')+1:], 10, 64)
		if err != nil {
			http.Error(w, `{"error":"bad id"}`, http.StatusBadRequest)
			return
		}
		id = n
	}
	var ids []int64
	if endpoint == "names" {
		if err := json.NewDecoder(r.Body).Decode(&ids); err != nil || len(ids) == 0 || len(ids) > 1000 {
			http.Error(w, `{"error":"bad ids"}`, http.StatusBadRequest)
			return
		}
	} else {
		ids = []int64{id}
	}

	s.mu.Lock()
	s.calls[endpoint]++
	s.agents[r.UserAgent()] = true
	for _, id := range ids {
		s.asked[id]++
	}
	s.inflight++
	hold := s.hold
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}

	s.mu.Lock()
	status, retry, remain := s.status, s.retryAfter, s.remain
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if remain >= 0 {
		h.Set("X-ESI-Error-Limit-Remain", strconv.Itoa(remain))
		h.Set("X-ESI-Error-Limit-Reset", retry)
	}
	if status != 0 {
		switch status {
		case 420:
			h.Set("X-ESI-Error-Limit-Remain", "0")
			h.Set("X-ESI-Error-Limit-Reset", retry)
		case http.StatusTooManyRequests:
			h.Set("Retry-After", retry)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"status %d"}`, status)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch endpoint {
	case "names":
		var out []named
		for _, id := range ids {
			n, ok := s.lookupLocked(id)
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"error":"Ensure all IDs are valid before resolving."}`)
				return
			}
			out = append(out, n)
		}
		_ = json.NewEncoder(w).Encode(out)
	case "corporations", "alliances":
		var v [2]string
		var ok bool
		if endpoint == "corporations" {
			v, ok = s.corps[id]
			if !ok && s.knowAll && id > 0 && !s.unknown[id] {
				v, ok = [2]string{"Corporation " + strconv.FormatInt(id, 10), "C" + strconv.FormatInt(id%100000, 10)}, true
			}
		} else {
			v, ok = s.allies[id]
			if !ok && s.knowAll && id > 0 && !s.unknown[id] {
				v, ok = [2]string{"Alliance " + strconv.FormatInt(id, 10), "A" + strconv.FormatInt(id%100000, 10)}, true
			}
		}
		if !ok || s.unknown[id] {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"%s not found"}`, strings.TrimSuffix(endpoint, "s"))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": v[0], "ticker": v[1], "member_count": 1})
	}
}

// lookupLocked names an id for /universe/names/.
func (s *Server) lookupLocked(id int64) (named, bool) {
	if s.unknown[id] {
		return named{}, false
	}
	if n, ok := s.names[id]; ok {
		return named{"character", id, n}, true
	}
	if c, ok := s.corps[id]; ok {
		return named{"corporation", id, c[0]}, true
	}
	if a, ok := s.allies[id]; ok {
		return named{"alliance", id, a[0]}, true
	}
	if s.knowAll && id > 0 {
		return named{"character", id, "Character " + strconv.FormatInt(id, 10)}, true
	}
	return named{}, false
}

type named struct {
	Category string `json:"category"`
	ID       int64  `json:"id"`
	Name     string `json:"name"`
}
