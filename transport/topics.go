package transport

import (
	"strconv"
	"strings"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/universe"
)

// AllTopic is the PubSub topic every event is published on.
const AllTopic = "all"

// RegionTopic is the topic of a region's killmails.
func RegionTopic(id int64) string { return "region:" + strconv.FormatInt(id, 10) }

// ConstellationTopic is the topic of a constellation's killmails.
func ConstellationTopic(id int64) string { return "constellation:" + strconv.FormatInt(id, 10) }

// Topics publishes each event on "system:<id>", on "constellation:<id>" and
// "region:<id>" when u knows the system, and on AllTopic.
func Topics(u *universe.Universe) actors.TopicsFunc {
	return func(ev eventlog.Event) []string {
		t := make([]string, 0, 4)
		t = append(t, actors.SystemTopic(ev.SystemID))
		if s, ok := u.System(ev.SystemID); ok {
			t = append(t, ConstellationTopic(s.ConstellationID), RegionTopic(s.RegionID))
		}
		return append(t, AllTopic)
	}
}

// pubsubTopic is the topic that carries a followed system's events:
// eventlog.AllSystems follows AllTopic.
func pubsubTopic(system int64) string {
	if system == eventlog.AllSystems {
		return AllTopic
	}
	return actors.SystemTopic(system)
}

func pubsubTopics(systems []int64) []string {
	out := make([]string, len(systems))
	for i, id := range systems {
		out[i] = pubsubTopic(id)
	}
	return out
}

// topicKey parses a topic a client follows: "system:<id>",
// "constellation:<id>", "region:<id>" or "all".
func topicKey(topic string) (kind string, id int64, ok bool) {
	if topic == AllTopic {
		return AllTopic, 0, true
	}
	kind, rest, found := strings.Cut(topic, ":")
	if !found || (kind != "system" && kind != "constellation" && kind != "region") {
		return "", 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != rest {
		return "", 0, false
	}
	return kind, id, true
}

// topicSystems expands a followed topic into its systems: one system, the
// systems of a constellation or region, or eventlog.AllSystems. An unknown
// region or constellation is an error naming it.
func topicSystems(u *universe.Universe, topic string) ([]int64, error) {
	kind, id, ok := topicKey(topic)
	if !ok {
		return nil, badParam("topic", strconv.Quote(topic)+" is not system:<id>, constellation:<id>, region:<id> or all")
	}
	var ids []int64
	switch kind {
	case AllTopic:
		return []int64{eventlog.AllSystems}, nil
	case "system":
		return []int64{id}, nil
	case "constellation":
		ids = u.ConstellationSystems(id)
	case "region":
		ids = u.RegionSystems(id)
	}
	if len(ids) == 0 {
		return nil, badParam(kind+"s", strconv.FormatInt(id, 10)+" is not a known "+kind+" id")
	}
	return ids, nil
}

// topicSel is what a client asked to follow: systems, constellations,
// regions and/or everything.
type topicSel struct {
	systems, constellations, regions []int64
	all                              bool
}

func (t topicSel) empty() bool {
	return len(t.systems) == 0 && len(t.constellations) == 0 && len(t.regions) == 0 && !t.all
}

// topics lists the selection as topic names.
func (t topicSel) topics() []string {
	out := make([]string, 0, len(t.systems)+len(t.constellations)+len(t.regions)+1)
	for _, id := range t.systems {
		out = append(out, actors.SystemTopic(id))
	}
	for _, id := range t.constellations {
		out = append(out, ConstellationTopic(id))
	}
	for _, id := range t.regions {
		out = append(out, RegionTopic(id))
	}
	if t.all {
		out = append(out, AllTopic)
	}
	return out
}

// expandTopics expands topics into their systems, deduplicated in
// first-seen order. A set holding eventlog.AllSystems is just that one
// pseudo-system, which has no cap; otherwise more than maxSystems systems
// is an error.
func expandTopics(u *universe.Universe, topics []string, maxSystems int) ([]int64, error) {
	var out []int64
	all := false
	seen := make(map[int64]struct{})
	for _, t := range topics {
		ids, err := topicSystems(u, t)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id == eventlog.AllSystems {
				all = true
			}
			if _, dup := seen[id]; !dup && !all {
				seen[id] = struct{}{}
				out = append(out, id)
			}
		}
	}
	if all {
		return []int64{eventlog.AllSystems}, nil
	}
	if len(out) > maxSystems {
		return nil, badParam("systems", "more than "+strconv.Itoa(maxSystems)+" systems")
	}
	return out, nil
}
