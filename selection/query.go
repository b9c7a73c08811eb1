package selection

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/killfeed/killfeed/universe"
)

// idParams are the id-list parameters of a query, with the noun of their
// ids; each is read from name[] and name.
var idParams = []struct{ name, what string }{
	{"systems", "system"}, {"constellations", "constellation"}, {"regions", "region"},
	{"characters", "character"}, {"corporations", "corporation"}, {"alliances", "alliance"},
	{"factions", "faction"}, {"ships", "ship type"}, {"groups", "group"}, {"locations", "location"},
}

// idKeys are the keys of idParams: idKeys[name] is {name[], name}, made
// once so that a query names no key by concatenation.
var idKeys = func() map[string][2]string {
	m := make(map[string][2]string, len(idParams))
	for _, p := range idParams {
		m[p.name] = [2]string{p.name + "[]", p.name}
	}
	return m
}()

// idParamIndex is the index in idParams of each name.
var idParamIndex = func() map[string]int {
	m := make(map[string]int, len(idParams))
	for i, p := range idParams {
		m[p.name] = i
	}
	return m
}()

// IsQueryParam says whether ParseQuery reads the parameter name (as
// name, or name[] for the lists).
func IsQueryParam(name string) bool {
	base := strings.TrimSuffix(name, "[]")
	for _, p := range idParams {
		if base == p.name {
			return true
		}
	}
	switch base {
	case "labels":
		return true
	case "all", "min_value", "side":
		return base == name
	}
	return false
}

// ParseQuery reads a selection from an HTTP query: the location lists
// systems, constellations and regions and all=true, the id lists
// characters, corporations, alliances, factions, ships, groups and
// locations, labels, min_value and side. A list is given as name[]=1,
// name=1,2 or repeated name=. Other parameters are the caller's.
func ParseQuery(q url.Values) (Locations, Terms, error) {
	var loc Locations
	var t Terms
	// Which id lists the query holds, from its own few keys, so that a
	// poll is not looked up for every list it does not use.
	var present uint32
	for key := range q {
		if i, ok := idParamIndex[strings.TrimSuffix(key, "[]")]; ok {
			present |= 1 << i
		}
	}
	for i, p := range idParams {
		if present&(1<<i) == 0 {
			continue
		}
		ids, err := queryIDs(q, p.name, p.what, idKeys[p.name])
		if err != nil {
			return loc, t, err
		}
		switch p.name {
		case "systems":
			loc.Systems = ids
		case "constellations":
			loc.Constellations = ids
		case "regions":
			loc.Regions = ids
		case "locations":
			t.Locations = ids
		default:
			for k := range kinds {
				if k.String() == p.name {
					*t.ids(k) = ids
				}
			}
		}
	}
	switch v := q.Get("all"); v {
	case "", "false", "0":
	case "true", "1":
		loc.All = true
	default:
		return loc, t, bad("all", "must be true or false")
	}
	for _, key := range []string{"labels[]", "labels"} {
		for _, v := range q[key] {
			for _, l := range strings.Split(v, ",") {
				if l = strings.TrimSpace(l); l == "" {
					return loc, t, bad("labels", "a label may not be empty")
				}
				t.Labels = append(t.Labels, l)
			}
		}
	}
	if v, ok := q["min_value"]; ok {
		n, err := strconv.ParseFloat(strings.TrimSpace(v[0]), 64)
		if err != nil || n < 0 || n != n || n > 1e300 {
			return loc, t, bad("min_value", strconv.Quote(v[0])+" is not a number of ISK, 0 or more")
		}
		t.MinValue = &n
	}
	if v, ok := q["side"]; ok {
		if _, ok := parseSide(v[0]); !ok || v[0] == "" {
			return loc, t, bad("side", strconv.Quote(v[0])+" is not any, victim or attacker")
		}
		t.Side = v[0]
	}
	return loc, t, nil
}

// queryIDs reads name[]=1&name[]=2, name=1,2 and repeated name= (keys
// are name[] and name), deduplicated in first-seen order.
func queryIDs(q url.Values, name, what string, keys [2]string) ([]int64, error) {
	n := 0
	for _, key := range keys {
		for _, v := range q[key] {
			n += strings.Count(v, ",") + 1
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]int64, 0, n)
	var seen map[int64]struct{} // past a few ids; below, out is searched
	for _, key := range keys {
		for _, v := range q[key] {
			for rest, more := v, true; more; {
				var part string
				part, rest, more = strings.Cut(rest, ",")
				part = strings.TrimSpace(part)
				id, err := strconv.ParseInt(part, 10, 64)
				if err != nil || id <= 0 {
					return nil, bad(name, strconv.Quote(part)+" is not a positive integer "+what+" id")
				}
				if seen == nil && len(out) >= 16 {
					seen = make(map[int64]struct{}, n)
					for _, id := range out {
						seen[id] = struct{}{}
					}
				}
				if seen != nil {
					if _, dup := seen[id]; dup {
						continue
					}
					seen[id] = struct{}{}
				} else if slices.Contains(out, id) {
					continue
				}
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// Build expands loc into systems and compiles t into the Selection's
// predicate. Without locations, terms mean "every system, narrowed"; with
// neither, the selection is empty, which is an error naming systems.
func Build(u *universe.Universe, loc Locations, t Terms, maxSystems int) (Selection, error) {
	where, err := t.Compile()
	if err != nil {
		return Selection{}, err
	}
	if len(loc.Systems) > maxSystems {
		return Selection{}, bad("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
	}
	if loc.Empty() {
		if where.Empty() {
			return Selection{}, bad("systems", "at least one system id is required (systems[]=30000142), or regions[], constellations[], all=true, or a term such as alliances[]")
		}
		loc.All = true
	}
	systems, err := loc.Expand(u, maxSystems)
	if err != nil {
		return Selection{}, err
	}
	return Selection{Systems: systems, Where: where}, nil
}
