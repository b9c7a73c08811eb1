// Package pebblestore is the durable backend of eventlog: an eventlog.Store
// over a Pebble database in one data directory.
//
// It owns the on-disk layout and nothing else; ordering, dedupe, offsets and
// retention decisions stay in eventlog.Log. Keys:
//
//	e/<event_id, 8 bytes big-endian>  killmail body
//	i/<event_id>                      index entry: system, killmail id, insert time, body size
//	c/<client_id>                     client offsets and last-seen time
//	m/format                          layout version, written when the store is created
//	m/next                            floor for the next event id (max-merged)
//	m/dropped                         every event id <= this was dropped (max-merged)
//	m/cursor/<name>                   upstream cursor (max-merged)
//	x/<keyspace>/<key>                a Keyspace another package owns (x/names/: the names cache)
//
// Bodies of one system are not clustered; a read of a system is a point
// lookup per event, ordered by the in-memory index that Load rebuilds from
// the i/ keys alone, without reading a body. Retention deletes ranges
// (Drop: e/ up to an id, Forget: i/ up to an id) and Pebble's compactions
// reclaim the space.
//
// Append commits one batch, records and cursors together, with a synced WAL
// write; concurrent Appends share an fsync through Pebble's commit pipeline.
// Client offsets, drops and forgets are written without a sync and become
// durable with the next synced write or at Close.
//
// Pebble treats a failed WAL write or sync as fatal (a failed fsync cannot be
// retried safely): the store logs the error and the process exits, and the
// next Open recovers every acknowledged write from the WAL; a torn,
// unacknowledged WAL tail is dropped. Other failures are returned: reads
// (on-disk corruption is logged and wrapped in ErrCorrupt rather than exiting
// as Pebble's default would), use after Close, and the BeforeAppend test hook.
package pebblestore
