package eventlog

import "slices"

// Retention says how a client takes part in retention.
type Retention uint8

// Retention modes.
const (
	// RetainIdle is the default: the client expires after Config.ClientTTL
	// idle, and until then the events it has not read are kept for it.
	RetainIdle Retention = iota
	// RetainAlways keeps the client however long it is idle (a configured
	// webhook), and the events it has not read with it.
	RetainAlways
	// RetainNothing keeps the client however long it is idle but holds
	// nothing back: the events it has not read are dropped when every other
	// client has read them, and its next read says Missed (a webhook that
	// has failed until it is reconfigured).
	RetainNothing
)

// SetRetention sets how clientID takes part in retention, creating it (as
// Fetch would) when it does not exist. The mode lives in memory only: a
// process that restarts sets it again.
func (l *Log) SetRetention(clientID string, r Retention) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.admit(clientID); err != nil {
		return err
	}
	l.client(clientID).retention = r
	return nil
}

// JoinSystems makes clientID follow exactly systems: every system it has
// no offset for starts at the head, so that it receives only their events
// stored from now on (RedisQ's semantics for a new queue, extended to a
// client whose selection grows); the offsets it has in systems stay where
// they are; those of other systems are forgotten, so that a selection that
// shrank holds nothing back. It creates the client when it does not exist.
// It returns the client's position: the lowest offset over systems, before
// which it has read everything of them.
func (l *Log) JoinSystems(clientID string, systems []int64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.admit(clientID); err != nil {
		return 0, err
	}
	c := l.client(clientID)
	for s := range c.offsets {
		if !slices.Contains(systems, s) {
			delete(c.offsets, s)
			l.dirty[clientID] = struct{}{}
		}
	}
	var pos uint64
	for i, s := range systems {
		o, ok := c.offsets[s]
		if !ok {
			o = l.head
			c.offsets[s] = o
			l.dirty[clientID] = struct{}{}
		}
		if i == 0 || o < pos {
			pos = o
		}
	}
	return pos, nil
}

// Position is clientID's lowest offset over systems (a system it has no
// offset for counts as 0); ok is false when the client does not exist.
func (l *Log) Position(clientID string, systems []int64) (pos uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[clientID]
	if c == nil {
		return 0, false
	}
	for i, s := range systems {
		o := c.offsets[s]
		if i == 0 || o < pos {
			pos = o
		}
	}
	return pos, true
}
