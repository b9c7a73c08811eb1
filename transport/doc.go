// Package transport owns killfeed's network surface: the Echo routes and
// handlers of the HTTP API (polling, long-polling, ingest, health), their
// parameter validation and the mapping of errors to status codes and JSON
// bodies. It talks to the store only through the actors.Service.
package transport
