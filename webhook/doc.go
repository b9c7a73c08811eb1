// Package webhook owns webhook delivery: killfeed posting what each
// configured filter matches to an HTTP endpoint, as JSON (one signed POST
// per event) or as Discord embeds (up to ten killmails a message).
//
// Each webhook is a client of the log with its own offsets (client id
// "webhook/<name>") and filter. A Runner peeks the events after its
// offsets, posts them in event_id order and advances the offsets only once
// the receiver answered 2xx: delivery is at least once, and a crash
// repeats at most what was in flight and what the last offset flush had
// not persisted. A receiver that is down, answers 5xx or times out is
// retried with capped exponential backoff; a 429 waits for Retry-After
// (Discord: retry_after) and X-RateLimit-Reset-After is honoured, so no
// request reaches a rate-limited endpoint early; any other 4xx is retried a
// few times, then the webhook is marked failed until the file is
// reloaded, and stops holding retention back. Every webhook runs in
// goroutines of its own: a slow one delays no other, nor the store.
//
// The Manager reads the webhooks file (LoadFile), starts a Runner per
// entry, applies a reloaded file (Apply) and reports each webhook's state
// (Status) and metrics.
package webhook
