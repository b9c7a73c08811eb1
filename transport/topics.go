package transport

import (
	"strconv"

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
