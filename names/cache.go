package names

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Kind is what an id names.
type Kind uint8

// The kinds of entity ESI names.
const (
	Character Kind = iota + 1
	Corporation
	Alliance
)

func (k Kind) String() string {
	switch k {
	case Character:
		return "character"
	case Corporation:
		return "corporation"
	case Alliance:
		return "alliance"
	}
	return "unknown"
}

// Entry is what the cache knows of one id.
type Entry struct {
	ID   int64
	Kind Kind
	Name string
	// Ticker is a corporation's or alliance's ticker.
	Ticker string
	// Fetched is when ESI answered, in Unix seconds.
	Fetched int64
	// Unknown says ESI does not know the id (it is asked again after
	// Config.UnknownTTL).
	Unknown bool
}

// Backing is where the cache persists entries, so that they survive a
// restart: a keyspace of the event store (pebblestore.Keyspace) when
// storage is on disk. Keys and values are opaque to it.
type Backing interface {
	// Get returns the value of key; ok is false when there is none.
	Get(key []byte) (value []byte, ok bool, err error)
	// Set stores the pairs in one write.
	Set(pairs [][2][]byte) error
}

// cache holds entries in memory, at most max, over an optional Backing.
// Memory is two generations of maps: when the young one is full, it
// becomes the old one and the old one is dropped; a hit in the old one
// moves the entry back to the young one. Entries fall out of memory, never
// out of the Backing.
type cache struct {
	max     int
	backing Backing

	mu         sync.Mutex
	young, old map[int64]Entry
}

func newCache(max int, backing Backing) *cache {
	return &cache{max: max, backing: backing, young: make(map[int64]Entry), old: make(map[int64]Entry)}
}

// get looks an id up in memory, then in the Backing.
func (c *cache) get(id int64) (Entry, bool, error) {
	c.mu.Lock()
	e, ok := c.young[id]
	if !ok {
		if e, ok = c.old[id]; ok {
			c.keepLocked(e)
		}
	}
	c.mu.Unlock()
	if ok || c.backing == nil {
		return e, ok, nil
	}
	v, ok, err := c.backing.Get(entryKey(id))
	if err != nil || !ok {
		return Entry{}, false, err
	}
	if e, err = decodeEntry(id, v); err != nil {
		return Entry{}, false, err
	}
	c.mu.Lock()
	c.keepLocked(e)
	c.mu.Unlock()
	return e, true, nil
}

// put stores entries in memory and in the Backing.
func (c *cache) put(es []Entry) error {
	if len(es) == 0 {
		return nil
	}
	c.mu.Lock()
	for _, e := range es {
		c.keepLocked(e)
	}
	c.mu.Unlock()
	if c.backing == nil {
		return nil
	}
	pairs := make([][2][]byte, len(es))
	for i, e := range es {
		pairs[i] = [2][]byte{entryKey(e.ID), appendEntry(nil, e)}
	}
	return c.backing.Set(pairs)
}

func (c *cache) keepLocked(e Entry) {
	if len(c.young) >= max(c.max/2, 1) {
		c.old, c.young = c.young, make(map[int64]Entry, len(c.young))
	}
	c.young[e.ID] = e
	delete(c.old, e.ID)
}

// len is the number of entries in memory.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.young) + len(c.old)
}

// entryKey is an id, 8 bytes big-endian.
func entryKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// entryV1 leads an encoded entry: version, kind, flags, fetched, name, ticker.
const entryV1 = 1

var errBadEntry = errors.New("names: bad stored entry")

func appendEntry(dst []byte, e Entry) []byte {
	var flags byte
	if e.Unknown {
		flags = 1
	}
	dst = append(dst, entryV1, byte(e.Kind), flags)
	dst = binary.AppendVarint(dst, e.Fetched)
	dst = binary.AppendUvarint(dst, uint64(len(e.Name)))
	dst = append(dst, e.Name...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Ticker)))
	return append(dst, e.Ticker...)
}

func decodeEntry(id int64, v []byte) (Entry, error) {
	e := Entry{ID: id}
	if len(v) < 3 || v[0] != entryV1 {
		return e, fmt.Errorf("%w: id %d", errBadEntry, id)
	}
	e.Kind, e.Unknown = Kind(v[1]), v[2]&1 != 0
	v = v[3:]
	var n int
	if e.Fetched, n = binary.Varint(v); n <= 0 {
		return e, fmt.Errorf("%w: id %d", errBadEntry, id)
	}
	v = v[n:]
	for _, s := range []*string{&e.Name, &e.Ticker} {
		l, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < l {
			return e, fmt.Errorf("%w: id %d", errBadEntry, id)
		}
		*s = string(v[n : n+int(l)])
		v = v[n+int(l):]
	}
	return e, nil
}
