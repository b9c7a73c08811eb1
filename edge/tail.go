package edge

import (
	"slices"
	"sort"

	"github.com/killfeed/killfeed/eventlog"
)

// tail is the bounded cache of the newest events an edge published, in
// event_id order, for `since` replays that need not ask the core.
type tail struct {
	max    int
	events []eventlog.Event
	// floor: events with id <= floor may be missing (evicted, or from
	// before a restart); the tail holds every published event after it.
	floor uint64
}

// add appends ev (newer than every held event), evicting the oldest past max.
func (t *tail) add(ev eventlog.Event) {
	t.events = append(t.events, ev)
	if len(t.events) > 2*t.max {
		drop := len(t.events) - t.max
		t.floor = t.events[drop-1].ID
		t.events = append(t.events[:0:0], t.events[drop:]...)
	}
}

// reset empties the tail; it is complete from floor on.
func (t *tail) reset(floor uint64) {
	t.events, t.floor = nil, floor
}

// since returns up to limit (0: all) held events after id after, of
// systems (every system when all).
func (t *tail) since(after uint64, systems []int64, all bool, limit int) []eventlog.Event {
	i := sort.Search(len(t.events), func(i int) bool { return t.events[i].ID > after })
	var out []eventlog.Event
	for _, ev := range t.events[i:] {
		if !all && !slices.Contains(systems, ev.SystemID) {
			continue
		}
		out = append(out, ev)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}
