package ingest

import (
	"context"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
)

// Store is where the sources put killmails; *actors.Service is one.
type Store interface {
	// Insert stores killmails, deduplicated by killmail id, and the optional
	// cursor in the same write.
	Insert(ctx context.Context, kms []killmail.Killmail, cursor *eventlog.Cursor) ([]eventlog.AppendResult, error)
	// Cursor returns a stored upstream cursor.
	Cursor(name string) (uint64, bool)
}

var _ Store = (*actors.Service)(nil)
