// Package killmail owns the killmail wire formats killfeed accepts: a bare ESI
// killmail, an R2Z2 file object ({killmail_id, hash, esi{…}, zkb{…}, …}) and a
// RedisQ package ({killID, killmail{…}, zkb{…}}). It turns each into the one
// stored form: the ESI object as compact JSON with the zkb block added when
// there is one. Killmails are compacted once here and never decoded again.
//
// What is stored must decode on every client: Check (called by Parse,
// ParseMany and FromESI, so by every ingest path) refuses a string or key
// that is not valid UTF-8 and nesting deeper than MaxDepth, with a
// *PathError naming the JSON path.
package killmail
