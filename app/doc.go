// Package app owns wiring killfeed into a running service: its Config, the
// start-up order (open storage, then spawn actors, then listen) and the
// shutdown order (HTTP, websockets, actors, storage). cmd/killfeed and the
// specs both start the service through it.
package app
