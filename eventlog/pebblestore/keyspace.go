package pebblestore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// prefixKeyspace leads the keys of the keyspaces other packages keep in
// the store: x/<name>/<key>.
var prefixKeyspace = []byte("x/")

// Keyspace is a part of the database that another package owns (the
// names cache keeps its entries in one), beside the events and under the
// same lock and lifetime. Writes are not synced on their own: they become
// durable with the next synced append, or at Close. Load ignores keyspaces.
type Keyspace struct {
	s      *Store
	prefix []byte
}

// Keyspace returns the keyspace called name (letters, digits, '-' and
// '_'). It is valid until the store is closed.
func (s *Store) Keyspace(name string) *Keyspace {
	p := append(bytes.Clone(prefixKeyspace), name...)
	return &Keyspace{s: s, prefix: append(p, '/')}
}

func (k *Keyspace) key(key []byte) []byte { return append(bytes.Clone(k.prefix), key...) }

// Get returns the value of key; ok is false when there is none.
func (k *Keyspace) Get(key []byte) (value []byte, ok bool, err error) {
	if err := k.s.acquire(); err != nil {
		return nil, false, err
	}
	defer k.s.mu.RUnlock()
	v, closer, err := k.s.db.Get(k.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyspace get: %w", markCorrupt(err))
	}
	value = bytes.Clone(v)
	return value, true, closer.Close()
}

// Set writes the pairs (key, value) in one batch.
func (k *Keyspace) Set(pairs [][2][]byte) error {
	if err := k.s.acquire(); err != nil {
		return err
	}
	defer k.s.mu.RUnlock()
	b := k.s.db.NewBatch()
	defer b.Close()
	for _, p := range pairs {
		if err := b.Set(k.key(p[0]), p[1], nil); err != nil {
			return fmt.Errorf("keyspace set: %w", err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("keyspace set: %w", err)
	}
	return nil
}

// Len counts the keys of the keyspace (a scan: for tests and tools).
func (k *Keyspace) Len() (int, error) {
	if err := k.s.acquire(); err != nil {
		return 0, err
	}
	defer k.s.mu.RUnlock()
	n := 0
	err := k.s.scan(k.prefix, func(_, _ []byte) error { n++; return nil })
	return n, err
}
