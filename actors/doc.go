// Package actors owns killfeed's Proto.Actor actors and their messages: the
// root supervisor, KillmailStore (the GenServer-like front of the event log),
// PubSub (per-topic fan-out to in-process subscribers) and Scheduler
// (periodic GC and offset flushes). Service is the Go API over them, the
// counterpart of the original design's public functions.
//
// State lives in the eventlog.Log, not in actor structs, so a store actor
// that panics restarts with every event and offset intact.
package actors
