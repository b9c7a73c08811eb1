package actors

import "context"

type sourceKey struct{}

// WithSource returns a context whose inserts (Service.Insert, InsertEvent)
// are counted as coming from source (metrics.SourceHTTP, …) in the
// killfeed_inserts_total metric. An ingest path sets it once on the
// context it runs with.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// SourceOf returns the source WithSource put in ctx, or "".
func SourceOf(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}
