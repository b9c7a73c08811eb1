// Package metrics owns killfeed's Prometheus metrics: their names, types,
// labels and help, the collectors that read existing state at scrape time
// (the event log's Stats, Pebble's Metrics), and the /metrics handler.
//
// Every metric is named killfeed_… and follows the Prometheus conventions:
// base units (seconds, bytes) in the name, counters end in _total.
//
// The hot paths (an insert, an event pushed to a websocket) only add to
// counters resolved once at setup: an atomic add, no lock, no allocation.
// Anything that can be read from state that exists anyway (events and
// bytes retained, live clients, Pebble's LSM) is read by a collector when
// Prometheus scrapes, and costs nothing in between.
//
// Each App has a registry of its own (NewRegistry), so that a process can
// run several services, as the in-process specs do. The constructors take
// a nil registry to mean "count, but export nowhere": callers never check
// for nil.
package metrics
