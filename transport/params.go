package transport

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// Limits of the polling parameters.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	MaxWait      = 30 * time.Second
	// DefaultMaxSystems is how many systems one request or connection may follow.
	DefaultMaxSystems = selection.DefaultMaxSystems
	// MaxParams is how many parameters one query may hold.
	MaxParams = 10000
)

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// indexedParam is name[0]=…, a PHP-style indexed list that killfeed does
// not read.
var indexedParam = regexp.MustCompile(`^([^\[\]]+)\[([^\]]+)\]$`)

// parseQuery reads a raw query string. Pairs are split on '&' only, so a
// ';' stays in its value, as RedisQ's filter= needs (net/url drops a pair
// that holds one). A bad %-escape is an error naming the parameter, as is
// more than MaxParams pairs.
func parseQuery(raw string) (url.Values, error) {
	q := make(url.Values)
	n := 0
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if n++; n > MaxParams {
			return nil, badParam("query", "more than "+strconv.Itoa(MaxParams)+" parameters")
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, badParam(strconv.Quote(k), "not a valid %-escaped parameter name")
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, badParam(key, strconv.Quote(v)+" is not a valid %-escaped value")
		}
		q[key] = append(q[key], val)
	}
	return q, nil
}

// rawQueryParam is the first value of name in a raw query, as
// url.Values.Get of parseQuery's result would give it ("" when absent or
// not a valid escape), without parsing the rest of the query.
func rawQueryParam(raw, name string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if !escaped(k) {
				continue
			}
			if key, err := url.QueryUnescape(k); err != nil || key != name {
				continue
			}
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return val
	}
	return ""
}

// escaped says whether a query key holds a %-escape or a '+', and so may
// read as another key once unescaped.
func escaped(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] == '%' || k[i] == '+' {
			return true
		}
	}
	return false
}

// checkParams refuses an indexed parameter (systems[1]=…) and, when strict,
// a parameter that neither the selection nor one of own reads.
func checkParams(q url.Values, strict bool, own ...string) error {
	for key := range q {
		if strings.Contains(key, "[") { // the pattern needs a bracket
			if m := indexedParam.FindStringSubmatch(key); m != nil {
				return badParam(key, "indexed parameters are not read; use "+m[1]+"[]=… for each value, or "+m[1]+"=1,2")
			}
		}
		if !strict || selection.IsQueryParam(key) {
			continue
		}
		known := false
		for _, o := range own {
			known = known || key == o
		}
		if !known {
			return badParam(key, "unknown parameter")
		}
	}
	return nil
}

// pollQuery is a validated poll request.
type pollQuery struct {
	clientID string
	sel      selection.Selection
	limit    int
	wait     time.Duration
	names    bool // names=, true by default (see names.go)
}

// validClientID says whether id matches clientIDPattern, without the
// regular expression.
func validClientID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '_', b == ':', b == '@', b == '-':
		default:
			return false
		}
	}
	return true
}

func parseClientID(q url.Values) (string, error) {
	id := q.Get("client_id")
	if id == "" {
		return "", badParam("client_id", "required")
	}
	if !validClientID(id) {
		return "", badParam("client_id", "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return id, nil
}

// parseSelection reads the selection of an HTTP query (see
// selection.ParseQuery) and expands it; without all, at most maxSystems
// systems.
func parseSelection(u *universe.Universe, q url.Values, maxSystems int) (selection.Selection, error) {
	loc, terms, err := selection.ParseQuery(q)
	if err != nil {
		return selection.Selection{}, err
	}
	return selection.Build(u, loc, terms, maxSystems)
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

// parsePoll reads the raw query of GET /api/killfeed (withLimit) or
// /api/killfeed/next. Every parameter must be one they read.
func parsePoll(u *universe.Universe, raw string, maxSystems int, withLimit bool) (pollQuery, error) {
	var p pollQuery
	q, err := parseQuery(raw)
	if err != nil {
		return p, err
	}
	own := []string{"client_id", "wait", "key", "names"} // names: see names.go
	if withLimit {
		own = append(own, "limit")
	}
	if err := checkParams(q, true, own...); err != nil {
		return p, err
	}
	if p.clientID, err = parseClientID(q); err != nil {
		return p, err
	}
	if p.sel, err = parseSelection(u, q, maxSystems); err != nil {
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
	if p.names, err = parseNamesParam(q, true); err != nil {
		return p, err
	}
	return p, nil
}
