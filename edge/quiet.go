package edge

import (
	"context"
	"log/slog"
	"strings"
)

// QuietRemote wraps h so that Proto.Actor remote's connection retries and
// dead letters, which it logs every few seconds while a peer is away (some
// as errors), are logged at debug level: the relay logs an outage once when it begins
// ("core link down", "core unreachable") and once when it ends ("core
// link up"). Every other record passes unchanged.
func QuietRemote(h slog.Handler) slog.Handler { return quietRemote{h} }

type quietRemote struct{ h slog.Handler }

// remoteNoise are the prefixes of what Proto.Actor logs about its
// connections coming and going (its endpoint writer, reader, watcher and
// manager), and its dead letters (requests to a core that is away).
var remoteNoise = []string{
	"Endpoint",
	"Started Endpoint",
	"[DeadLetter]",
}

func noisy(msg string) bool {
	for _, n := range remoteNoise {
		if strings.HasPrefix(msg, n) {
			return true
		}
	}
	return false
}

func (q quietRemote) Enabled(ctx context.Context, l slog.Level) bool { return q.h.Enabled(ctx, l) }

func (q quietRemote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && noisy(r.Message) {
		if !q.h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return q.h.Handle(ctx, r)
}

func (q quietRemote) WithAttrs(as []slog.Attr) slog.Handler { return quietRemote{q.h.WithAttrs(as)} }
func (q quietRemote) WithGroup(name string) slog.Handler    { return quietRemote{q.h.WithGroup(name)} }
