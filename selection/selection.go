package selection

import "slices"

// AllSystems is the pseudo-system that stands for every system: a
// Selection whose Systems holds it reads the whole log once.
const AllSystems int64 = 0

// Selection is what a client reads or follows: the solar systems (the
// partitions and offset keys of the log) and a predicate over the facts of
// each of their killmails.
type Selection struct {
	// Systems are solar system ids, or [AllSystems] for every system.
	Systems []int64
	// Where narrows the systems' killmails; the zero Predicate keeps all.
	Where Predicate
}

// Of selects every killmail of systems.
func Of(systems []int64) Selection { return Selection{Systems: systems} }

// All selects every killmail.
func All() Selection { return Selection{Systems: []int64{AllSystems}} }

// IsAll says whether s reads every system.
func (s Selection) IsAll() bool { return slices.Contains(s.Systems, AllSystems) }

// Covers says whether s holds an event of system with facts f.
func (s Selection) Covers(system int64, f *Facts) bool {
	if !s.IsAll() && !slices.Contains(s.Systems, system) {
		return false
	}
	return s.Where.Match(f)
}
