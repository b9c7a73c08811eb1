package selection

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/killfeed/killfeed/universe"
)

// Side restricts the entity terms to the victim or the attackers.
type Side uint8

// The sides a term looks at.
const (
	SideAny Side = iota
	SideVictim
	SideAttacker
)

func parseSide(s string) (Side, bool) {
	switch s {
	case "", "any":
		return SideAny, true
	case "victim":
		return SideVictim, true
	case "attacker":
		return SideAttacker, true
	}
	return 0, false
}

// Limits of one predicate.
const (
	// MaxIDs is how many ids one term may list.
	MaxIDs = 1000
	// MaxLabels is how many labels a predicate may list.
	MaxLabels = 64
	// MaxLabelLen is the longest label, in bytes.
	MaxLabelLen = 64
	// MaxFilterLen is the longest RedisQ filter, in bytes.
	MaxFilterLen = 4096
)

// Terms is the wire form of a predicate, as a subscribe frame or a Phoenix
// join payload carries it (the JSON names are the parameter names). Ids of
// one term are OR; different terms are AND. The zero value matches every
// killmail.
type Terms struct {
	Characters   []int64 `json:"characters,omitempty"`
	Corporations []int64 `json:"corporations,omitempty"`
	Alliances    []int64 `json:"alliances,omitempty"`
	Factions     []int64 `json:"factions,omitempty"`
	// Ships are ship type ids.
	Ships []int64 `json:"ships,omitempty"`
	// Groups are ship group ids of the static data.
	Groups []int64 `json:"groups,omitempty"`
	// Side is "any" (or ""), "victim" or "attacker": the parties the
	// six terms above look at.
	Side string `json:"side,omitempty"`
	// Labels are zkb.labels values (solo, npc, pvp, awox, loc:highsec…).
	Labels []string `json:"labels,omitempty"`
	// MinValue is the least zkb.totalValue in ISK; nil means none. A
	// killmail without a value never matches it.
	MinValue *float64 `json:"min_value,omitempty"`
	// Locations are zkb.locationID values.
	Locations []int64 `json:"locations,omitempty"`
	// Filter is a RedisQ filter= expression (see ParseRedisQFilter).
	Filter string `json:"filter,omitempty"`
}

// ids returns the id list of kind k.
func (t *Terms) ids(k Kind) *[]int64 {
	switch k {
	case Character:
		return &t.Characters
	case Corporation:
		return &t.Corporations
	case Alliance:
		return &t.Alliances
	case Faction:
		return &t.Factions
	case Ship:
		return &t.Ships
	}
	return &t.Groups
}

// Empty says whether t has no term.
func (t *Terms) Empty() bool {
	for k := range kinds {
		if len(*t.ids(k)) > 0 {
			return false
		}
	}
	return len(t.Labels) == 0 && t.MinValue == nil && len(t.Locations) == 0 && t.Filter == ""
}

// Predicate is a compiled condition over the Facts of a killmail. The zero
// value matches every killmail. A Predicate is immutable and safe for
// concurrent use.
type Predicate struct {
	terms []term // all must match
	key   string // canonical form; "" for the zero value
	body  bool   // some term reads the killmail JSON (RedisQ keys without a fact)
}

// term is one condition of a predicate. Terms are monotone (no negation of
// a term): a term that needs the body answers true when body is nil, so
// that Match over facts alone is a superset of MatchBody.
type term interface {
	match(f *Facts, body *gjson.Result) bool
}

// Compile validates t and builds its Predicate. Errors are *ParamError
// naming the field at fault.
func (t Terms) Compile() (Predicate, error) {
	side, ok := parseSide(t.Side)
	if !ok {
		return Predicate{}, bad("side", strconv.Quote(t.Side)+" is not any, victim or attacker")
	}
	var p Predicate
	var canon Terms
	for k := range kinds {
		ids := *t.ids(k)
		if len(ids) == 0 {
			continue
		}
		if len(ids) > MaxIDs {
			return Predicate{}, bad(k.String(), "more than "+strconv.Itoa(MaxIDs)+" ids")
		}
		sorted := slices.Clone(ids)
		for _, id := range sorted {
			if id <= 0 {
				return Predicate{}, bad(k.String(), strconv.FormatInt(id, 10)+" is not a positive id")
			}
			if k == Group {
				if _, ok := universe.DefaultItems().Group(id); !ok {
					return Predicate{}, bad("groups", strconv.FormatInt(id, 10)+" is not a known group id")
				}
			}
		}
		slices.Sort(sorted)
		sorted = slices.Clip(slices.Compact(sorted))
		*canon.ids(k) = sorted
		p.terms = append(p.terms, entityTerm{kind: k, side: side, ids: sorted})
	}
	if len(t.Labels) > 0 {
		if len(t.Labels) > MaxLabels {
			return Predicate{}, bad("labels", "more than "+strconv.Itoa(MaxLabels)+" labels")
		}
		ls := slices.Clone(t.Labels)
		for _, l := range ls {
			if l == "" {
				return Predicate{}, bad("labels", "a label may not be empty")
			}
			if len(l) > MaxLabelLen {
				return Predicate{}, bad("labels", "a label is at most "+strconv.Itoa(MaxLabelLen)+" bytes")
			}
			if !utf8.ValidString(l) {
				return Predicate{}, bad("labels", "a label must be valid UTF-8")
			}
		}
		slices.Sort(ls)
		ls = slices.Compact(ls)
		canon.Labels = ls
		p.terms = append(p.terms, labelTerm(ls))
	}
	if t.MinValue != nil {
		v := *t.MinValue
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Predicate{}, bad("min_value", "must be a number of ISK, 0 or more")
		}
		canon.MinValue = &v
		p.terms = append(p.terms, minValueTerm(v))
	}
	if len(t.Locations) > 0 {
		if len(t.Locations) > MaxIDs {
			return Predicate{}, bad("locations", "more than "+strconv.Itoa(MaxIDs)+" ids")
		}
		ids := slices.Clone(t.Locations)
		for _, id := range ids {
			if id <= 0 {
				return Predicate{}, bad("locations", strconv.FormatInt(id, 10)+" is not a positive id")
			}
		}
		slices.Sort(ids)
		ids = slices.Clip(slices.Compact(ids))
		canon.Locations = ids
		p.terms = append(p.terms, locationTerm(ids))
	}
	if t.Filter != "" {
		if !utf8.ValidString(t.Filter) || len(t.Filter) > MaxFilterLen {
			return Predicate{}, bad("filter", "must be valid UTF-8 of at most "+strconv.Itoa(MaxFilterLen)+" bytes")
		}
		f, body, err := parseRedisQ(t.Filter)
		if err != nil {
			return Predicate{}, err
		}
		canon.Filter = t.Filter
		p.terms = append(p.terms, f)
		p.body = body
	}
	if len(p.terms) == 0 {
		return Predicate{}, nil
	}
	if side != SideAny {
		canon.Side = t.Side
	}
	b, _ := json.Marshal(canon)
	p.key = string(b)
	return p, nil
}

// Parse reads a predicate's canonical form (Predicate.String); "" is the
// predicate that matches everything.
func Parse(s string) (Predicate, error) {
	if s == "" {
		return Predicate{}, nil
	}
	var t Terms
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return Predicate{}, bad("where", "not a predicate: "+err.Error())
	}
	return t.Compile()
}

// String is the canonical form of p: the JSON of its Terms with ids
// sorted, "" when p matches everything. Two predicates with the same
// String match the same killmails.
func (p Predicate) String() string { return p.key }

// Terms returns the canonical terms of p.
func (p Predicate) Terms() Terms {
	var t Terms
	if p.key != "" {
		_ = json.Unmarshal([]byte(p.key), &t)
	}
	return t
}

// Entities returns the entity term of p with the fewest ids: every
// killmail p matches has a party (of either side) with one of ids of kind
// k, so a subscriber may follow those entities' topics instead of every
// event. ok is false when p has no entity term at its top level.
func (p Predicate) Entities() (k Kind, ids []int64, ok bool) {
	for _, t := range p.terms {
		if e, isEntity := t.(entityTerm); isEntity && (!ok || len(e.ids) < len(ids)) {
			k, ids, ok = e.kind, e.ids, true
		}
	}
	return k, ids, ok
}

// Empty says whether p matches every killmail.
func (p Predicate) Empty() bool { return len(p.terms) == 0 }

// NeedsBody says whether p has terms that read the killmail JSON: Match is
// then only a first cut, and MatchBody decides.
func (p Predicate) NeedsBody() bool { return p.body }

// Match says whether a killmail with facts f matches p; for a predicate
// that NeedsBody, whether it may match. Nil facts match only the empty
// predicate.
func (p Predicate) Match(f *Facts) bool {
	if len(p.terms) == 0 {
		return true
	}
	if f == nil {
		return false
	}
	for _, t := range p.terms {
		if !t.match(f, nil) {
			return false
		}
	}
	return true
}

// MatchBody says whether the killmail km, whose facts are f (nil: extracted
// here), matches p.
func (p Predicate) MatchBody(f *Facts, km []byte) bool {
	if len(p.terms) == 0 {
		return true
	}
	if f == nil {
		f = Extract(km)
	}
	if !p.body {
		return p.Match(f)
	}
	doc := gjson.ParseBytes(km)
	for _, t := range p.terms {
		if !t.match(f, &doc) {
			return false
		}
	}
	return true
}

// entityTerm: some party of side has one of ids of kind.
type entityTerm struct {
	kind Kind
	side Side
	ids  []int64 // ascending
}

func (t entityTerm) match(f *Facts, _ *gjson.Result) bool {
	if t.side != SideAttacker {
		if _, ok := slices.BinarySearch(t.ids, f.Victim[t.kind]); ok {
			return true
		}
	}
	if t.side == SideVictim {
		return false
	}
	return intersects(t.ids, f.Attackers[t.kind])
}

// intersects says whether two ascending lists share an id.
func intersects(a, b []int64) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b) <= 16 {
		i, j := 0, 0
		for i < len(a) && j < len(b) {
			switch {
			case a[i] == b[j]:
				return true
			case a[i] < b[j]:
				i++
			default:
				j++
			}
		}
		return false
	}
	for _, id := range a {
		if _, ok := slices.BinarySearch(b, id); ok {
			return true
		}
	}
	return false
}

// labelTerm: zkb.labels holds one of the labels.
type labelTerm []string

func (t labelTerm) match(f *Facts, _ *gjson.Result) bool {
	for _, l := range f.Labels {
		if _, ok := slices.BinarySearch(t, l); ok {
			return true
		}
	}
	return false
}

// minValueTerm: zkb.totalValue >= the value.
type minValueTerm float64

func (t minValueTerm) match(f *Facts, _ *gjson.Result) bool {
	return f.HasValue && f.Value >= float64(t)
}

// locationTerm: zkb.locationID is one of the ids.
type locationTerm []int64

func (t locationTerm) match(f *Facts, _ *gjson.Result) bool {
	if f.Location == 0 {
		return false
	}
	_, ok := slices.BinarySearch(t, f.Location)
	return ok
}
