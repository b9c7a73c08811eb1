// Package eventlog owns the ordered killmail log: the global event_id, the
// per-system index, per-client offsets, retention (offset GC, caps, client
// expiry), idempotent insert by killmail_id and the "missed" signal.
//
// A Log keeps its index in memory. Without a Store it is the memory backend;
// with one (see package eventlog/pebblestore) every append is synced to the
// Store before it becomes visible, and the index is rebuilt from it at Open.
// Its reads (Fetch, Peek, Since) answer from memory; killmails the Store
// holds on disk are left to the Batch's ReadBodies, which the reader calls
// once the read returns, outside the Log's lock.
// A Log is safe for concurrent use; it knows nothing of actors or HTTP.
package eventlog
