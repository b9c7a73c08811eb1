package pebblestore_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	"github.com/killfeed/killfeed/killmail"
)

// synthetic returns n killmails with killmail ids from base, cycling through
// the fixture's bodies and systems.
func synthetic(src []killmail.Killmail, base int64, n int) []killmail.Killmail {
	out := make([]killmail.Killmail, n)
	for i := range out {
		km := src[i%len(src)]
		out[i] = killmail.Killmail{ID: base + int64(i), SystemID: km.SystemID, JSON: km.JSON}
	}
	return out
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// faultFS injects errorfs.ErrInjected into operations matching match while
// it is armed.
type faultFS struct {
	armed atomic.Bool
	match func(errorfs.Op) bool
}

func (f *faultFS) wrap(inner vfs.FS) vfs.FS {
	return errorfs.Wrap(inner, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if f.armed.Load() && f.match(op) {
			return errorfs.ErrInjected
		}
		return nil
	}))
}

func isSST(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".sst") }

// body reads one body through a view of s.
func body(s *pebblestore.Store, id uint64) ([]byte, error) {
	v, err := s.Bodies()
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.Body(id)
}
