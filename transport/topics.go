package transport

import (
	"strconv"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/selection"
	"github.com/killfeed/killfeed/universe"
)

// AllTopic is the PubSub topic every event is published on.
const AllTopic = "all"

// RegionTopic is the topic of a region's killmails.
func RegionTopic(id int64) string { return "region:" + strconv.FormatInt(id, 10) }

// ConstellationTopic is the topic of a constellation's killmails.
func ConstellationTopic(id int64) string { return "constellation:" + strconv.FormatInt(id, 10) }

// entityPrefixes are the topic prefixes of the entity kinds.
var entityPrefixes = map[selection.Kind]string{
	selection.Character: "character:", selection.Corporation: "corporation:", selection.Alliance: "alliance:",
	selection.Faction: "faction:", selection.Ship: "ship:", selection.Group: "group:",
}

// EntityTopic is the topic of the killmails that have an entity of kind k
// among their parties, victim or attacker: "alliance:<id>", ….
func EntityTopic(k selection.Kind, id int64) string {
	return entityPrefixes[k] + strconv.FormatInt(id, 10)
}

// Topics publishes each event on "system:<id>", on "constellation:<id>" and
// "region:<id>" when u knows the system, on AllTopic, and on the topic of
// every entity among its parties (EntityTopic), each once.
func Topics(u *universe.Universe) actors.TopicsFunc {
	return func(ev eventlog.Event) []string {
		f := ev.Facts
		if f == nil {
			f = selection.Extract(ev.Killmail)
		}
		n := 4
		for _, ids := range f.Attackers {
			n += len(ids) + 1
		}
		t := make([]string, 0, n)
		t = append(t, actors.SystemTopic(ev.SystemID))
		if s, ok := u.System(ev.SystemID); ok {
			t = append(t, ConstellationTopic(s.ConstellationID), RegionTopic(s.RegionID))
		}
		t = append(t, AllTopic)
		for _, k := range selection.Kinds {
			if id := f.Victim[k]; id != 0 && !f.Has(selection.SideAttacker, k, id) {
				t = append(t, EntityTopic(k, id))
			}
			for _, id := range f.Attackers[k] {
				t = append(t, EntityTopic(k, id))
			}
		}
		return t
	}
}

// selectionTopics are the PubSub topics that carry sel's events: its
// systems' topics, or, for a selection of every system narrowed by an
// entity term when entities is set, that term's entity topics.
func selectionTopics(sel selection.Selection, entities bool) []string {
	if entities && sel.IsAll() {
		if k, ids, ok := sel.Where.Entities(); ok {
			out := make([]string, len(ids))
			for i, id := range ids {
				out[i] = EntityTopic(k, id)
			}
			return out
		}
	}
	return pubsubTopics(sel.Systems)
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
