package eventlog

import "github.com/killfeed/killfeed/selection"

// CaughtUp makes a Fetch that has nothing to return: when clientID exists,
// already holds an offset in every system of sel that is at or past that
// system's newest event (for AllSystems: the head), has missed nothing, and
// is bound to owner (or owner is empty), it does what Fetch does then —
// marks the client seen, moves those offsets to the head, so that a quiet
// system does not hold retention back — and returns the same empty batch,
// with ok true. Otherwise it changes nothing and ok is false: the caller
// makes the Fetch.
//
// It is the read a poll with nothing new makes, the common one, and it
// holds the log's lock only for a lookup per system, so callers may make it
// without going through the store actor.
func (l *Log) CaughtUp(clientID, owner string, sel selection.Selection) (b Batch, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[clientID]
	if l.closed || c == nil || (owner != "" && c.owner != owner) || len(sel.Systems) == 0 {
		return Batch{}, false
	}
	all := sel.IsAll()
	for _, s := range sel.Systems {
		o, known := c.offsets[s]
		if !known {
			return Batch{}, false
		}
		switch {
		case all:
			// Every other system's events are in AllSystems' stream: a
			// Fetch moves each offset to the head, so each must be there.
			if o < l.head || o < l.dropped {
				return Batch{}, false
			}
		default:
			si := l.systems[s]
			if si != nil && (o < si.dropped || (len(si.ids) > 0 && o < si.ids[len(si.ids)-1])) {
				return Batch{}, false
			}
		}
	}
	c.lastSeen = l.cfg.Now().UnixNano()
	l.advance(clientID, c, sel.Systems, l.head)
	return Batch{Head: l.head, Oldest: l.oldest(), Through: l.head}, true
}
