package selection

import "strings"

// TenBillion is the least value of zKillboard's total_value:10b+ channel.
const TenBillion = 10_000_000_000

// channelKinds are the channel prefixes that name an entity, by Kind.
var channelKinds = map[string]Kind{
	"character": Character, "corporation": Corporation, "alliance": Alliance,
	"faction": Faction, "ship": Ship, "group": Group,
}

// Channel parses a channel name as zKillboard's websocket published them
// (and killfeed's Phoenix topics name them): "system:<id>",
// "constellation:<id>", "region:<id>" and "all" are locations;
// "character:<id>", "corporation:<id>", "alliance:<id>", "faction:<id>",
// "ship:<type id>", "group:<group id>", "label:<label>", "location:<id>"
// and "total_value:10b+" are every system narrowed by one term. With
// zkill, zKillboard's names for everything ("killstream", "all:*",
// "none:*", "label:all") are accepted too. ok is false for any other name;
// an unknown group is caught by Terms.Compile.
func Channel(name string, zkill bool) (loc string, t Terms, ok bool) {
	if zkill {
		switch name {
		case "killstream", "all:*", "none:*", "label:all":
			return "all", t, true
		}
	}
	if _, _, ok := ParseTopic(name); ok {
		return name, t, true
	}
	kind, rest, found := strings.Cut(name, ":")
	if !found {
		return "", t, false
	}
	switch kind {
	case "label":
		if rest == "" || len(rest) > MaxLabelLen {
			return "", t, false
		}
		t.Labels = []string{rest}
		return "all", t, true
	case "total_value":
		if rest != "10b+" {
			return "", t, false
		}
		v := float64(TenBillion)
		t.MinValue = &v
		return "all", t, true
	case "location":
		id, ok := canonicalID(rest)
		if !ok {
			return "", t, false
		}
		t.Locations = []int64{id}
		return "all", t, true
	}
	k, isEntity := channelKinds[kind]
	if !isEntity {
		return "", t, false
	}
	id, ok := canonicalID(rest)
	if !ok {
		return "", t, false
	}
	*t.ids(k) = []int64{id}
	return "all", t, true
}

// Narrow adds the terms of extra to t, for a channel whose join payload
// narrows it; a term both set is an error naming it (the payload cannot
// widen the channel's own term).
func (t Terms) Narrow(extra Terms) (Terms, error) {
	for k := range kinds {
		if len(*extra.ids(k)) == 0 {
			continue
		}
		if len(*t.ids(k)) > 0 {
			return t, bad(k.String(), "given by the topic already")
		}
		*t.ids(k) = *extra.ids(k)
	}
	switch {
	case len(extra.Labels) > 0 && len(t.Labels) > 0:
		return t, bad("labels", "given by the topic already")
	case extra.MinValue != nil && t.MinValue != nil:
		return t, bad("min_value", "given by the topic already")
	case len(extra.Locations) > 0 && len(t.Locations) > 0:
		return t, bad("locations", "given by the topic already")
	case extra.Filter != "":
		return t, bad("filter", "not a join field")
	}
	if len(extra.Labels) > 0 {
		t.Labels = extra.Labels
	}
	if extra.MinValue != nil {
		t.MinValue = extra.MinValue
	}
	if len(extra.Locations) > 0 {
		t.Locations = extra.Locations
	}
	t.Side = extra.Side
	return t, nil
}
