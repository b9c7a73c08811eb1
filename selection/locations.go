package selection

import (
	"strconv"
	"strings"

	"github.com/killfeed/killfeed/universe"
)

// DefaultMaxSystems is how many systems one selection may expand to.
const DefaultMaxSystems = 5000

// Locations are where a client reads: systems, constellations, regions
// and/or everything.
type Locations struct {
	Systems, Constellations, Regions []int64
	All                              bool
}

// Empty says whether l names nothing.
func (l Locations) Empty() bool {
	return len(l.Systems) == 0 && len(l.Constellations) == 0 && len(l.Regions) == 0 && !l.All
}

// Topics lists l as topic names: "system:<id>", "constellation:<id>",
// "region:<id>" and "all".
func (l Locations) Topics() []string {
	out := make([]string, 0, len(l.Systems)+len(l.Constellations)+len(l.Regions)+1)
	for _, id := range l.Systems {
		out = append(out, "system:"+strconv.FormatInt(id, 10))
	}
	for _, id := range l.Constellations {
		out = append(out, "constellation:"+strconv.FormatInt(id, 10))
	}
	for _, id := range l.Regions {
		out = append(out, "region:"+strconv.FormatInt(id, 10))
	}
	if l.All {
		out = append(out, "all")
	}
	return out
}

// ParseTopic parses a location topic: "system:<id>", "constellation:<id>",
// "region:<id>" or "all" (kind "all", id 0).
func ParseTopic(topic string) (kind string, id int64, ok bool) {
	if topic == "all" {
		return "all", 0, true
	}
	kind, rest, found := strings.Cut(topic, ":")
	if !found || (kind != "system" && kind != "constellation" && kind != "region") {
		return "", 0, false
	}
	id, ok = canonicalID(rest)
	if !ok {
		return "", 0, false
	}
	return kind, id, true
}

// canonicalID reads a positive decimal id written without sign or leading
// zeros.
func canonicalID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, false
	}
	return id, true
}

// TopicSystems expands a location topic into its systems: one system, the
// systems of a constellation or region, or [AllSystems]. An unknown region
// or constellation is an error naming it.
func TopicSystems(u *universe.Universe, topic string) ([]int64, error) {
	kind, id, ok := ParseTopic(topic)
	if !ok {
		return nil, bad("topic", strconv.Quote(topic)+" is not system:<id>, constellation:<id>, region:<id> or all")
	}
	var ids []int64
	switch kind {
	case "all":
		return []int64{AllSystems}, nil
	case "system":
		return []int64{id}, nil
	case "constellation":
		ids = u.ConstellationSystems(id)
	case "region":
		ids = u.RegionSystems(id)
	}
	if len(ids) == 0 {
		return nil, bad(kind+"s", strconv.FormatInt(id, 10)+" is not a known "+kind+" id")
	}
	return ids, nil
}

// ExpandTopics expands location topics into their systems, deduplicated in
// first-seen order. A set holding "all" is just [AllSystems], which has no
// cap; otherwise more than maxSystems systems is an error.
func ExpandTopics(u *universe.Universe, topics []string, maxSystems int) ([]int64, error) {
	var out []int64
	all := false
	seen := make(map[int64]struct{})
	for _, t := range topics {
		ids, err := TopicSystems(u, t)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id == AllSystems {
				all = true
			}
			if _, dup := seen[id]; !dup && !all {
				seen[id] = struct{}{}
				out = append(out, id)
			}
		}
	}
	if all {
		return []int64{AllSystems}, nil
	}
	if len(out) > maxSystems {
		return nil, bad("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
	}
	return out, nil
}

// CheckIDs validates ids of the field name, each a what id (positive),
// and removes repeats, keeping first-seen order.
func CheckIDs(name, what string, ids []int64) ([]int64, error) {
	out := make([]int64, 0, len(ids))
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, bad(name, strconv.FormatInt(id, 10)+" is not a positive "+what+" id")
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out, nil
}
