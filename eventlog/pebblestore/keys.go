package pebblestore

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/killfeed/killfeed/eventlog"
)

// Key prefixes and fixed keys; see the package documentation.
var (
	prefixBody   = []byte("e/")
	prefixIndex  = []byte("i/")
	prefixClient = []byte("c/")
	prefixMeta   = []byte("m/")
	prefixCursor = []byte("m/cursor/")
	keyFormat    = []byte("m/format")
	keyNext      = []byte("m/next")
	keyDropped   = []byte("m/dropped")
)

// formatV1 is the value of m/format for the layout this package writes.
const formatV1 = "killfeed-eventlog-v1"

func idKey(prefix []byte, id uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], id)
	return k
}

func bodyKey(id uint64) []byte  { return idKey(prefixBody, id) }
func indexKey(id uint64) []byte { return idKey(prefixIndex, id) }

// rangeEnd returns the end key (exclusive) of the range of prefix's ids <= id.
func rangeEnd(prefix []byte, id uint64) []byte {
	return append(idKey(prefix, id), 0)
}

// prefixEnd is the smallest key greater than every key with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++ // prefixes end in '/', never 0xff
	return end
}

func keyID(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 {
		return 0, fmt.Errorf("%w: key %q", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

// appendIndex encodes the i/ value of r: system, killmail id, time, size.
func appendIndex(dst []byte, r eventlog.Record) []byte {
	dst = binary.AppendVarint(dst, r.SystemID)
	dst = binary.AppendVarint(dst, r.KillmailID)
	dst = binary.AppendVarint(dst, r.Time)
	return binary.AppendUvarint(dst, uint64(len(r.Body)))
}

// decodeIndex decodes an i/ value into r (Body stays nil) and returns the
// stored body size.
func decodeIndex(v []byte, r *eventlog.Record) (size uint64, err error) {
	var n int
	if r.SystemID, n = binary.Varint(v); n <= 0 {
		return 0, ErrCorrupt
	}
	v = v[n:]
	if r.KillmailID, n = binary.Varint(v); n <= 0 {
		return 0, ErrCorrupt
	}
	v = v[n:]
	if r.Time, n = binary.Varint(v); n <= 0 {
		return 0, ErrCorrupt
	}
	v = v[n:]
	if size, n = binary.Uvarint(v); n <= 0 || n != len(v) {
		return 0, ErrCorrupt
	}
	return size, nil
}

// appendClient encodes a c/ value: last seen, then (system, offset) pairs,
// then, for a client bound to an owner, the owner's length and bytes (older
// values end after the pairs and load with no owner).
func appendClient(dst []byte, c eventlog.ClientState) []byte {
	dst = binary.AppendVarint(dst, c.LastSeen)
	dst = binary.AppendUvarint(dst, uint64(len(c.Offsets)))
	for s, o := range c.Offsets {
		dst = binary.AppendVarint(dst, s)
		dst = binary.AppendUvarint(dst, o)
	}
	if c.Owner != "" {
		dst = binary.AppendUvarint(dst, uint64(len(c.Owner)))
		dst = append(dst, c.Owner...)
	}
	return dst
}

func decodeClient(id string, v []byte) (eventlog.ClientState, error) {
	c := eventlog.ClientState{ID: id}
	var n int
	if c.LastSeen, n = binary.Varint(v); n <= 0 {
		return c, ErrCorrupt
	}
	v = v[n:]
	count, n := binary.Uvarint(v)
	if n <= 0 || count > uint64(len(v)) {
		return c, ErrCorrupt
	}
	v = v[n:]
	c.Offsets = make(map[int64]uint64, count)
	for range count {
		s, n := binary.Varint(v)
		if n <= 0 {
			return c, ErrCorrupt
		}
		v = v[n:]
		o, n := binary.Uvarint(v)
		if n <= 0 {
			return c, ErrCorrupt
		}
		v = v[n:]
		c.Offsets[s] = o
	}
	if len(v) != 0 {
		size, n := binary.Uvarint(v)
		if n <= 0 || size == 0 || size != uint64(len(v)-n) {
			return c, ErrCorrupt
		}
		c.Owner = string(v[n:])
	}
	return c, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeU64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, ErrCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}

// maxMerger keeps the largest of 8-byte big-endian values, so that m/ keys
// only move forward whatever order concurrent batches commit in.
var maxMerger = &pebble.Merger{
	Name: "killfeed.maxuint64.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &maxValue{}
		return m, m.add(value)
	},
}

type maxValue struct{ v uint64 }

func (m *maxValue) add(value []byte) error {
	v, err := decodeU64(value)
	if err != nil {
		return fmt.Errorf("merge %x: %w", value, err)
	}
	m.v = max(m.v, v)
	return nil
}

func (m *maxValue) MergeNewer(value []byte) error { return m.add(value) }
func (m *maxValue) MergeOlder(value []byte) error { return m.add(value) }
func (m *maxValue) Finish(bool) ([]byte, io.Closer, error) {
	return u64(m.v), nil, nil
}
