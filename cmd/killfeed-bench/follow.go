package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// follow is what a subscriber of the bench follows: systems (-per of them,
// drawn by activity) or one corporation or alliance drawn from the day's
// parties by how many killmails it is in, victim or attacker.
type follow string

const (
	followSystems      follow = "systems"
	followCorporations follow = "corporations"
	followAlliances    follow = "alliances"
)

// parseFollow reads -follow: one or more of systems, corporations and
// alliances, comma-separated.
func parseFollow(s string) ([]follow, error) {
	var out []follow
	for _, p := range strings.Split(s, ",") {
		switch f := follow(strings.TrimSpace(p)); f {
		case followSystems, followCorporations, followAlliances:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("-follow: %q is not systems, corporations or alliances", p)
		}
	}
	return out, nil
}

// subscribeFrame is the native subscribe frame for ids of f.
func subscribeFrame(f follow, ids string) []byte {
	return []byte(`{"type":"subscribe","` + string(f) + `":[` + ids + `]}`)
}

// subscribeFields is what the floor and the bare fan-out read of a
// subscribe frame.
type subscribeFields struct {
	Systems      []int64
	Corporations []int64
	Alliances    []int64
}

// keys lists what a subscriber following ids of each kind is keyed by.
func (s subscribeFields) keys() []followKey {
	var out []followKey
	for _, id := range s.Systems {
		out = append(out, followKey{followSystems, id})
	}
	for _, id := range s.Corporations {
		out = append(out, followKey{followCorporations, id})
	}
	for _, id := range s.Alliances {
		out = append(out, followKey{followAlliances, id})
	}
	return out
}

// followKey is one id a subscriber follows.
type followKey struct {
	kind follow
	id   int64
}

// killmailKeys lists the keys a killmail is delivered on: its system and,
// when parties is set, the corporation and alliance of the victim and of
// every attacker, each once (a subscriber following several of them still
// gets the killmail once: the readers see to that).
func killmailKeys(dst []followKey, km killmail.Killmail, parties bool) []followKey {
	dst = append(dst[:0], followKey{followSystems, km.SystemID})
	if !parties {
		return dst
	}
	f := selection.Extract(km.JSON)
	for _, k := range [...]struct {
		kind follow
		sel  selection.Kind
	}{{followCorporations, selection.Corporation}, {followAlliances, selection.Alliance}} {
		if id := f.Victim[k.sel]; id != 0 {
			dst = append(dst, followKey{k.kind, id})
		}
		for _, id := range f.Attackers[k.sel] {
			if id != 0 && id != f.Victim[k.sel] {
				dst = append(dst, followKey{k.kind, id})
			}
		}
	}
	return dst
}

// idList writes ids as a JSON array's contents.
func idList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}
