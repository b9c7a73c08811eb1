package selection

import (
	"slices"
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
	var e expansion
	for _, t := range topics {
		ids, err := TopicSystems(u, t)
		if err != nil {
			return nil, err
		}
		e.add(ids)
	}
	return e.result(maxSystems)
}

// Expand is ExpandTopics of l.Topics() without the topic names: a list of
// systems alone, the common poll, costs one slice at most (none when it
// has no repeats).
func (l Locations) Expand(u *universe.Universe, maxSystems int) ([]int64, error) {
	if len(l.Constellations) == 0 && len(l.Regions) == 0 && !l.All {
		for _, id := range l.Systems {
			if id <= 0 {
				return nil, badTopic("system:" + strconv.FormatInt(id, 10))
			}
		}
		systems := distinct(l.Systems)
		if len(systems) > maxSystems {
			return nil, bad("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
		}
		return systems, nil
	}
	var e expansion
	for _, id := range l.Systems {
		if id <= 0 {
			return nil, badTopic("system:" + strconv.FormatInt(id, 10))
		}
		e.add([]int64{id})
	}
	for _, g := range []struct {
		kind    string
		ids     []int64
		systems func(int64) []int64
	}{{"constellation", l.Constellations, u.ConstellationSystems}, {"region", l.Regions, u.RegionSystems}} {
		for _, id := range g.ids {
			if id <= 0 {
				return nil, badTopic(g.kind + ":" + strconv.FormatInt(id, 10))
			}
			ids := g.systems(id)
			if len(ids) == 0 {
				return nil, bad(g.kind+"s", strconv.FormatInt(id, 10)+" is not a known "+g.kind+" id")
			}
			e.add(ids)
		}
	}
	if l.All {
		e.add([]int64{AllSystems})
	}
	return e.result(maxSystems)
}

func badTopic(topic string) error {
	return bad("topic", strconv.Quote(topic)+" is not system:<id>, constellation:<id>, region:<id> or all")
}

// expansion gathers the systems of location topics, deduplicated in
// first-seen order.
type expansion struct {
	out  []int64
	seen map[int64]struct{}
	all  bool
}

func (e *expansion) add(ids []int64) {
	if e.seen == nil {
		e.seen = make(map[int64]struct{})
	}
	for _, id := range ids {
		if id == AllSystems {
			e.all = true
		}
		if _, dup := e.seen[id]; !dup && !e.all {
			e.seen[id] = struct{}{}
			e.out = append(e.out, id)
		}
	}
}

func (e *expansion) result(maxSystems int) ([]int64, error) {
	if e.all {
		return []int64{AllSystems}, nil
	}
	if len(e.out) > maxSystems {
		return nil, bad("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
	}
	return e.out, nil
}

// distinct returns ids without repeats, in first-seen order; it copies
// only when there are repeats.
func distinct(ids []int64) []int64 {
	if len(ids) <= 16 { // the common case: no map
		repeated := false
		for i := 1; i < len(ids) && !repeated; i++ {
			repeated = slices.Contains(ids[:i], ids[i])
		}
		if !repeated {
			return ids
		}
	}
	seen := make(map[int64]struct{}, len(ids))
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			out := slices.Clone(ids[:i])
			for _, id := range ids[i:] {
				if _, dup := seen[id]; !dup {
					seen[id] = struct{}{}
					out = append(out, id)
				}
			}
			return out
		}
		seen[id] = struct{}{}
	}
	return ids
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
