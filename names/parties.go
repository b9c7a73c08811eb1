package names

import "github.com/tidwall/gjson"

// Wanted is the ids of a set of killmails that ESI names, deduplicated.
type Wanted struct {
	Characters, Corporations, Alliances []int64
}

// Len is the number of ids.
func (w *Wanted) Len() int { return len(w.Characters) + len(w.Corporations) + len(w.Alliances) }

type wantSet struct {
	w    Wanted
	seen map[int64]struct{}
}

func (s *wantSet) add(kind Kind, id int64) {
	if id <= 0 {
		return
	}
	if s.seen == nil {
		s.seen = make(map[int64]struct{})
	}
	if _, ok := s.seen[id]; ok {
		return
	}
	s.seen[id] = struct{}{}
	switch kind {
	case Character:
		s.w.Characters = append(s.w.Characters, id)
	case Corporation:
		s.w.Corporations = append(s.w.Corporations, id)
	case Alliance:
		s.w.Alliances = append(s.w.Alliances, id)
	}
}

// addKillmail adds the victim's and every attacker's character,
// corporation and alliance ids of a killmail (ESI JSON, or a package with
// the killmail under "killmail" is not expected: the stored form).
func (s *wantSet) addKillmail(km []byte) {
	party := func(p gjson.Result) {
		s.add(Character, p.Get("character_id").Int())
		s.add(Corporation, p.Get("corporation_id").Int())
		s.add(Alliance, p.Get("alliance_id").Int())
	}
	party(gjson.GetBytes(km, "victim"))
	gjson.GetBytes(km, "attackers").ForEach(func(_, a gjson.Result) bool {
		party(a)
		return true
	})
}

// Parties lists the character, corporation and alliance ids of killmails.
func Parties(kms ...[]byte) Wanted {
	var s wantSet
	for _, km := range kms {
		s.addKillmail(km)
	}
	return s.w
}
