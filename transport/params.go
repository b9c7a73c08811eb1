package transport

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/killfeed/killfeed/universe"
)

// Limits of the polling parameters.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	MaxWait      = 30 * time.Second
	// DefaultMaxSystems is how many systems one request or connection may follow.
	DefaultMaxSystems = 5000
)

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// pollQuery is a validated poll request.
type pollQuery struct {
	clientID string
	systems  []int64
	limit    int
	wait     time.Duration
}

func parseClientID(q url.Values) (string, error) {
	id := q.Get("client_id")
	if id == "" {
		return "", badParam("client_id", "required")
	}
	if !clientIDPattern.MatchString(id) {
		return "", badParam("client_id", "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return id, nil
}

// parseIDs reads name[]=1&name[]=2, name=1,2 and repeated name=,
// deduplicated in first-seen order.
func parseIDs(q url.Values, name, what string) ([]int64, error) {
	var out []int64
	seen := make(map[int64]struct{})
	for _, key := range []string{name + "[]", name} {
		for _, v := range q[key] {
			for _, part := range strings.Split(v, ",") {
				part = strings.TrimSpace(part)
				id, err := strconv.ParseInt(part, 10, 64)
				if err != nil || id <= 0 {
					return nil, badParam(name, "\""+part+"\" is not a positive integer "+what+" id")
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// parseSystems reads systems, constellations and regions (each as name[]=1,
// name=1,2 or repeated name=) and all=true, and expands them into the
// systems to read: deduplicated in first-seen order, or just
// eventlog.AllSystems for all=true. Without all, at most maxSystems systems.
func parseSystems(u *universe.Universe, q url.Values, maxSystems int) ([]int64, error) {
	var sel topicSel
	var err error
	if sel.systems, err = parseIDs(q, "systems", "system"); err != nil {
		return nil, err
	}
	if sel.constellations, err = parseIDs(q, "constellations", "constellation"); err != nil {
		return nil, err
	}
	if sel.regions, err = parseIDs(q, "regions", "region"); err != nil {
		return nil, err
	}
	switch v := q.Get("all"); v {
	case "", "false", "0":
	case "true", "1":
		sel.all = true
	default:
		return nil, badParam("all", "must be true or false")
	}
	if len(sel.systems) > maxSystems {
		return nil, badParam("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
	}
	if sel.empty() {
		return nil, badParam("systems", "at least one system id is required (systems[]=30000142), or regions[], constellations[] or all=true")
	}
	return expandTopics(u, sel.topics(), maxSystems)
}

func parseIntParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

func parsePoll(u *universe.Universe, q url.Values, maxSystems int, withLimit bool) (pollQuery, error) {
	var p pollQuery
	var err error
	if p.clientID, err = parseClientID(q); err != nil {
		return p, err
	}
	if p.systems, err = parseSystems(u, q, maxSystems); err != nil {
		return p, err
	}
	if withLimit {
		if p.limit, err = parseIntParam(q, "limit", DefaultLimit, 1, MaxLimit); err != nil {
			return p, err
		}
	}
	wait, err := parseIntParam(q, "wait", 0, 0, int(MaxWait/time.Second))
	if err != nil {
		return p, err
	}
	p.wait = time.Duration(wait) * time.Second
	return p, nil
}
