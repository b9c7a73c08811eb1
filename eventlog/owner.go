package eventlog

// admit refuses to create clientID past Config.MaxClients. Called with mu
// held.
func (l *Log) admit(clientID string) error {
	if l.cfg.MaxClients <= 0 || len(l.clients) < l.cfg.MaxClients {
		return nil
	}
	if _, ok := l.clients[clientID]; ok {
		return nil
	}
	return ErrTooManyClients
}

// claimedOnly says whether c was created by Claim and has read nothing yet,
// so that Join still starts it at the head.
func (c *client) claimedOnly() bool { return len(c.offsets) == 0 }

// Claim binds clientID to owner (an opaque token, such as a digest of a read
// key) the first time an owner uses it, and fails with ErrNotOwner when it
// is bound to another owner; the client's offsets are untouched either way.
// A client that does not exist yet is created bound to owner (starting like
// any new client), or refused with ErrTooManyClients past
// Config.MaxClients. A client created before owners were used is bound to
// the first owner that claims it. The binding is persisted with the client
// and lasts until the client expires. An empty owner claims nothing.
func (l *Log) Claim(clientID, owner string) error {
	if owner == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if c, ok := l.clients[clientID]; ok {
		switch c.owner {
		case owner:
			return nil
		case "":
			c.owner = owner
			l.dirty[clientID] = struct{}{}
			return nil
		}
		return ErrNotOwner
	}
	if err := l.admit(clientID); err != nil {
		return err
	}
	l.client(clientID).owner = owner
	l.dirty[clientID] = struct{}{}
	return nil
}
