// Package ingest owns killfeed's upstream sources: the zKillboard R2Z2
// poller, the RedisQ-style poller with its ESI fetch, the Proto.Actor remote
// endpoint that in-cluster ingestors send InsertKillmail to, and bulk import
// of JSON Lines files.
//
// Every source hands killmails to a Store (the actor service in production)
// and never serves HTTP. Upstream faults — timeouts, 5xx, 429, connection
// errors — are retried with exponential backoff and jitter, logged once per
// streak; a source stops only when its context is cancelled. Input that can
// never be stored (invalid JSON, missing ESI fields) is logged, counted and
// skipped.
package ingest
