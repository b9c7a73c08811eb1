package selection

import (
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/killfeed/killfeed/universe"
)

// Kind is what an entity id names.
type Kind uint8

// The kinds of entity a party of a killmail has.
const (
	Character Kind = iota
	Corporation
	Alliance
	Faction
	Ship  // ship type id
	Group // the ship type's group, from the static data
	kinds
)

var kindNames = [kinds]string{"characters", "corporations", "alliances", "factions", "ships", "groups"}

// Kinds lists every Kind.
var Kinds = [...]Kind{Character, Corporation, Alliance, Faction, Ship, Group}

// String is the plural name the wire syntaxes use for the kind.
func (k Kind) String() string { return kindNames[k] }

// Party is the ids of one party of a killmail, by Kind (0: none).
type Party [kinds]int64

// Facts are what a Predicate looks at in a killmail. They are extracted
// once, when the killmail is stored (Extract), and shared read-only by
// every reader.
type Facts struct {
	// System is the solar_system_id.
	System int64
	// Victim is the victim's ids.
	Victim Party
	// Attackers holds, per Kind, the distinct ids of every attacker,
	// ascending.
	Attackers [kinds][]int64
	// HasValue says the killmail carries zkb.totalValue.
	HasValue bool
	// Value is zkb.totalValue in ISK.
	Value float64
	// Location is zkb.locationID (0: none).
	Location int64
	// Labels are zkb.labels.
	Labels []string
}

// Has says whether side's parties hold id of kind k.
func (f *Facts) Has(side Side, k Kind, id int64) bool {
	if side != SideAttacker && f.Victim[k] == id {
		return true
	}
	if side != SideVictim {
		_, ok := slices.BinarySearch(f.Attackers[k], id)
		return ok
	}
	return false
}

// maxInterned bounds the distinct labels shared between killmails; past it
// a label is kept per killmail.
const maxInterned = 4096

var labels = struct {
	sync.Mutex
	m map[string]string
}{m: make(map[string]string)}

func intern(s string) string {
	labels.Lock()
	defer labels.Unlock()
	if v, ok := labels.m[s]; ok {
		return v
	}
	s = strings.Clone(s) // s points into the killmail
	if len(labels.m) < maxInterned {
		labels.m[s] = s
	}
	return s
}

// Extract reads the facts of a stored killmail (compact ESI JSON with an
// optional "zkb" object). Ship groups come from the embedded static data;
// an unknown ship type has no group.
func Extract(km []byte) *Facts {
	f := &Facts{}
	items := universe.DefaultItems()
	party := func(v gjson.Result) Party {
		var p Party
		v.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "character_id":
				p[Character] = v.Int()
			case "corporation_id":
				p[Corporation] = v.Int()
			case "alliance_id":
				p[Alliance] = v.Int()
			case "faction_id":
				p[Faction] = v.Int()
			case "ship_type_id":
				p[Ship] = v.Int()
			}
			return true
		})
		if p[Ship] != 0 {
			if g, ok := items.GroupOf(p[Ship]); ok {
				p[Group] = g
			}
		}
		return p
	}
	if len(km) == 0 {
		return f
	}
	// Read in place: a stored killmail is never modified, and nothing of it
	// is kept but interned labels (copied by intern when new).
	gjson.Parse(unsafe.String(&km[0], len(km))).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "solar_system_id":
			f.System = v.Int()
		case "victim":
			f.Victim = party(v)
		case "attackers":
			v.ForEach(func(_, a gjson.Result) bool {
				p := party(a)
				for k, id := range p {
					if id != 0 {
						f.Attackers[k] = append(f.Attackers[k], id)
					}
				}
				return true
			})
		case "zkb":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "totalValue":
					if v.Type == gjson.Number {
						f.HasValue, f.Value = true, v.Num
					}
				case "locationID":
					f.Location = v.Int()
				case "labels":
					v.ForEach(func(_, l gjson.Result) bool {
						if l.Type == gjson.String {
							f.Labels = append(f.Labels, intern(l.Str))
						}
						return true
					})
				}
				return true
			})
		}
		return true
	})
	// The distinct ids of every kind share one exactly sized array: facts
	// stay in memory as long as their event.
	total := 0
	for k := range f.Attackers {
		if ids := f.Attackers[k]; len(ids) > 0 {
			slices.Sort(ids)
			f.Attackers[k] = slices.Compact(ids)
			total += len(f.Attackers[k])
		}
	}
	if total > 0 {
		buf := make([]int64, total)
		off := 0
		for k, ids := range f.Attackers {
			if len(ids) > 0 {
				n := copy(buf[off:], ids)
				f.Attackers[k] = buf[off : off+n : off+n]
				off += n
			}
		}
	}
	if len(f.Labels) > 0 {
		f.Labels = slices.Clone(f.Labels)
	}
	return f
}
