// Package transport owns killfeed's network surface: the Echo routes and
// handlers of the HTTP API (polling, long-polling, ingest, health), their
// parameter validation and the mapping of errors to status codes and JSON
// bodies, and the live dashboard at GET / (the embedded ui/ directory, with
// GET /api/universe and GET /api/stats). It talks to the store only through
// the actors.Service.
package transport
