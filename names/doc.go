// Package names owns the names killfeed adds beside the ids of a killmail:
// characters, corporations and alliances (names and tickers) from EVE's
// ESI, and ships, weapons, groups, systems, regions and factions from the
// embedded static data (package universe).
//
// A Resolver asks ESI about ids it does not know (POST /universe/names/ for
// characters, up to 1000 ids a call; GET /corporations/{id}/ and
// /alliances/{id}/ for names and tickers) and keeps the answers in a Cache:
// in memory, bounded, over an optional persistent Backing (a Pebble
// keyspace beside the events), so that a restart asks ESI nothing it
// already knew. Entries older than the TTL are served while they are asked
// again. Concurrent lookups of one id share one call. The client is a good
// ESI citizen: a User-Agent naming killfeed and the operator's contact,
// X-ESI-Error-Limit-Remain/-Reset, 420 and 429 (Retry-After) respected, and
// exponential backoff on 5xx and network errors; while it backs off, lookups
// fail at once instead of waiting.
//
// Ingest calls Resolver.Warm before storing killmails: it starts the
// lookups of their unknown ids and waits for them at most a bound (the
// --names-wait flag), never longer, so that ESI never holds the feed up. The
// killmail is stored as it came; a Renderer adds the names when a killmail
// is delivered, from the cache, and keeps the rendered bytes per event (one
// render serves every subscriber). A render that lacked a name asks for it
// in the background and is made again once the cache learned anything new,
// so that names missing at first appear in every later read.
package names
