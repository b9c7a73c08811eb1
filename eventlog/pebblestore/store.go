package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/killfeed/killfeed/eventlog"
)

var _ eventlog.Store = (*Store)(nil)

// lockName is the file in the data dir that Open locks, besides Pebble's own
// LOCK, so that a second opener gets ErrLocked.
const lockName = "KILLFEED.LOCK"

// Options configures a Store. The zero value is ready for production.
type Options struct {
	// Logger receives Pebble's messages; nil means slog.Default().
	Logger *slog.Logger
	// CacheBytes sizes Pebble's block cache (uncompressed blocks); 0 means
	// 128 MiB, about the bodies of the last 50,000 events, which is where
	// polling clients read.
	CacheBytes int64
	// MemTableBytes sizes Pebble's memtable, which is also about how much WAL
	// Open replays after a crash; 0 means 64 MiB (a busy day of killmails is
	// ~45 MB). Up to two memtables may be held at once.
	MemTableBytes int64
	// FS is the filesystem under the data dir; nil means the OS filesystem.
	// Tests inject faults with github.com/cockroachdb/pebble/v2/vfs/errorfs.
	FS vfs.FS
	// CompactAfter is how many event ids Drop or Forget must delete past the
	// last compacted one before the deleted range is compacted in the
	// background, so that its disk space is reclaimed without waiting for
	// Pebble to flush and pick it; 0 means 10,000 (about 24 MB of bodies).
	CompactAfter int
	// BeforeAppend is a test hook called at the start of every Append; an
	// error it returns fails that Append before anything is written.
	BeforeAppend func() error
	// MinFreeBytes is the free space the data dir's filesystem must keep:
	// below it Append fails with ErrDiskFull (the insert is refused, reads
	// go on) instead of letting Pebble hit a failed WAL write, which it
	// treats as fatal. 0 means 64 MiB; negative disables the check.
	MinFreeBytes int64
	// FreeBytes reports the free bytes of the filesystem holding dir; nil
	// means statfs. Tests use it to simulate a full disk.
	FreeBytes func(dir string) (uint64, error)
}

// Store is an eventlog.Store over Pebble. It is safe for concurrent use.
type Store struct {
	dir          string
	db           *pebble.DB
	lock         io.Closer
	cache        *pebble.Cache
	beforeAppend func() error
	minFree      int64
	freeBytes    func(dir string) (uint64, error)

	// mu is held for reading by every operation and for writing by Close,
	// which so waits for operations in flight. Appends share it and meet in
	// Pebble's commit pipeline, which groups their syncs.
	mu     sync.RWMutex
	closed bool
	vmu    sync.Mutex
	views  map[*bodies]struct{} // open views, closed by Close

	compactAfter uint64
	ctx          context.Context // cancelled by Close
	cancel       context.CancelFunc
	compactions  sync.WaitGroup
	cmu          sync.Mutex
	compacting   bool
	compacted    map[byte]uint64 // by prefix: ids <= this were compacted
	logger       *slog.Logger
}

// Open opens the store in dir, creating it when dir holds no database. A dir
// that is locked by another Store, is not a directory, or holds data this
// package did not write (or Pebble finds corrupt) is an error, never an
// empty store.
func Open(dir string, opts Options) (*Store, error) {
	s, err := open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	return s, nil
}

func open(dir string, opts Options) (_ *Store, err error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create dir: %w", err)
	}
	if err := refuseForeign(fs, dir); err != nil {
		return nil, err
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		if _, ok := errors.AsType[*iofs.PathError](err); ok {
			return nil, fmt.Errorf("lock: %w", err) // could not create the file
		}
		return nil, fmt.Errorf("%w: %v", ErrLocked, err)
	}
	defer func() {
		if err != nil {
			_ = lock.Close()
		}
	}()
	exists, err := existing(fs, dir)
	if err != nil {
		return nil, err
	}

	memtable := opts.MemTableBytes
	if memtable <= 0 {
		memtable = 64 << 20
	}
	s := &Store{
		dir:          dir,
		lock:         lock,
		beforeAppend: opts.BeforeAppend,
		minFree:      opts.MinFreeBytes,
		freeBytes:    opts.FreeBytes,
		compactAfter: 10_000,
		compacted:    make(map[byte]uint64),
		views:        make(map[*bodies]struct{}),
		logger:       logger,
	}
	if opts.CompactAfter > 0 {
		s.compactAfter = uint64(opts.CompactAfter)
	}
	popts := &pebble.Options{
		FS:                 fs,
		Logger:             pebbleLogger{logger.With("pebble", dir)},
		EventListener:      events(logger, dir),
		Merger:             maxMerger,
		FormatMajorVersion: pebble.FormatNewest,
		ErrorIfNotExists:   exists,
		MemTableSize:       uint64(memtable),
	}
	for i := range popts.Levels {
		// Point reads of bodies skip tables whose filter rules the key out,
		// which matters while L0 holds many tables spanning every prefix.
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = 128 << 20
	}
	s.cache = pebble.NewCache(cacheBytes)
	popts.Cache = s.cache
	defer func() {
		if err != nil {
			s.cache.Unref()
		}
	}()
	s.db, err = pebble.Open(dir, popts)
	if err != nil {
		return nil, markCorrupt(err)
	}
	defer func() {
		if err != nil {
			_ = s.db.Close()
		}
	}()
	if !exists {
		if err := s.db.Set(keyFormat, []byte(formatV1), pebble.Sync); err != nil {
			return nil, fmt.Errorf("write format: %w", err)
		}
	} else if err := s.checkFormat(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// checkFormat fails unless the database was created by this package.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(keyFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: database has no %s key: not a killfeed store", ErrCorrupt, keyFormat)
	}
	if err != nil {
		return fmt.Errorf("read format: %w", err)
	}
	defer closer.Close()
	if string(v) != formatV1 {
		return fmt.Errorf("%w: unknown format %q", ErrCorrupt, v)
	}
	return nil
}

// existing says whether dir holds a Pebble database. Pebble files without
// one (a lost manifest) are ErrCorrupt: Pebble would start an empty database
// beside them.
func existing(fs vfs.FS, dir string) (bool, error) {
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return false, fmt.Errorf("read dir: %w", markCorrupt(err))
	}
	if desc.Exists {
		return true, nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("list: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".log") ||
			strings.HasSuffix(n, ".blob") || strings.HasPrefix(n, "MANIFEST-") {
			return false, fmt.Errorf("%w: %s present but no manifest", ErrCorrupt, n)
		}
	}
	return false, nil
}

// refuseForeign fails with ErrForeign when dir holds a file that is neither
// killfeed's lock nor one of Pebble's (lost+found, which mkfs puts at the
// root of a filesystem, does not count).
func refuseForeign(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, n := range names {
		if !ours(n) {
			return fmt.Errorf("%w: %s (use an empty or new directory)", ErrForeign, fs.PathJoin(dir, n))
		}
	}
	return nil
}

// ours reports whether a file name in the data dir is one killfeed or
// Pebble writes.
func ours(name string) bool {
	switch name {
	case lockName, "lost+found", "LOCK", "CURRENT", "archive":
		return true
	}
	for _, prefix := range []string{"MANIFEST-", "OPTIONS-", "marker.", "temporary."} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	for _, suffix := range []string{".sst", ".log", ".blob", ".dbtmp"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// markCorrupt makes Pebble's corruption errors match ErrCorrupt too.
func markCorrupt(err error) error {
	if pebble.IsCorruptionError(err) && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// acquire read-locks the store for one operation; release with s.mu.RUnlock.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Load reads every index entry, client and cursor; Records and Forgotten
// carry no Body (see KeepsBodies).
func (s *Store) Load() (eventlog.Loaded, error) {
	if err := s.acquire(); err != nil {
		return eventlog.Loaded{}, err
	}
	defer s.mu.RUnlock()
	ld, err := s.load()
	if err != nil {
		return eventlog.Loaded{}, fmt.Errorf("load %s: %w", s.dir, markCorrupt(err))
	}
	return ld, nil
}

func (s *Store) load() (eventlog.Loaded, error) {
	var ld eventlog.Loaded
	var next, dropped uint64
	err := s.scan(prefixMeta, func(k, v []byte) error {
		switch {
		case bytes.Equal(k, keyFormat):
			return nil
		case bytes.Equal(k, keyNext):
			return decodeInto(&next, v)
		case bytes.Equal(k, keyDropped):
			return decodeInto(&dropped, v)
		case bytes.HasPrefix(k, prefixCursor):
			c := eventlog.Cursor{Name: string(k[len(prefixCursor):])}
			ld.Cursors = append(ld.Cursors, c)
			return decodeInto(&ld.Cursors[len(ld.Cursors)-1].Value, v)
		}
		return ErrCorrupt
	})
	if err != nil {
		return ld, err
	}
	next = max(next, dropped+1)
	err = s.scan(prefixIndex, func(k, v []byte) error {
		id, err := keyID(prefixIndex, k)
		if err != nil {
			return err
		}
		r := eventlog.Record{ID: id}
		size, err := decodeIndex(v, &r)
		if err != nil {
			return err
		}
		r.Size = int64(size)
		if id <= dropped {
			ld.Forgotten = append(ld.Forgotten, r)
		} else {
			ld.Records = append(ld.Records, r)
		}
		next = max(next, id+1)
		return nil
	})
	if err != nil {
		return ld, err
	}
	last, err := s.lastID(prefixBody)
	if err != nil {
		return ld, err
	}
	ld.NextID = max(next, last+1)
	err = s.scan(prefixClient, func(k, v []byte) error {
		c, err := decodeClient(string(k[len(prefixClient):]), v)
		ld.Clients = append(ld.Clients, c)
		return err
	})
	return ld, err
}

func decodeInto(dst *uint64, v []byte) (err error) {
	*dst, err = decodeU64(v)
	return err
}

// scan calls fn with every key and value under prefix, in key order; fn must
// not keep them.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			err = fmt.Errorf("key %q: %w", it.Key(), err)
			return errors.Join(err, it.Close())
		}
	}
	return it.Close()
}

// lastID returns the largest id under prefix, or 0.
func (s *Store) lastID(prefix []byte) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	var id uint64
	if it.Last() {
		id, err = keyID(prefix, it.Key())
	}
	return id, errors.Join(err, it.Close())
}

// Append writes recs and cursors in one batch and returns once it is synced.
func (s *Store) Append(recs []eventlog.Record, cursors []eventlog.Cursor) error {
	if s.beforeAppend != nil {
		if err := s.beforeAppend(); err != nil {
			return fmt.Errorf("append: %w", err)
		}
	}
	if err := s.checkFree(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	size := len(cursors) * 64
	for _, r := range recs {
		size += len(r.Body) + 80 // two keys, an index value, batch headers
	}
	b := s.db.NewBatchWithSize(size)
	defer b.Close()
	var idx []byte
	for _, r := range recs {
		idx = appendIndex(idx[:0], r)
		if err := b.Set(bodyKey(r.ID), r.Body, nil); err != nil {
			return fmt.Errorf("append %d: %w", r.ID, err)
		}
		if err := b.Set(indexKey(r.ID), idx, nil); err != nil {
			return fmt.Errorf("append %d: %w", r.ID, err)
		}
	}
	for _, c := range cursors {
		if err := b.Merge(append(bytes.Clone(prefixCursor), c.Name...), u64(c.Value), nil); err != nil {
			return fmt.Errorf("append cursor %s: %w", c.Name, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

// checkFree refuses a write when the data dir's filesystem is nearly full.
func (s *Store) checkFree() error {
	if s.minFree < 0 {
		return nil
	}
	need := uint64(64 << 20)
	if s.minFree > 0 {
		need = uint64(s.minFree)
	}
	free := s.freeBytes
	if free == nil {
		free = statfsFree
	}
	n, err := free(s.dir)
	if err != nil {
		return nil // cannot tell: let the write try
	}
	if n < need {
		return fmt.Errorf("%w: %d MiB free in %s, %d MiB kept free", ErrDiskFull, n>>20, s.dir, need>>20)
	}
	return nil
}

func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Bodies returns a view of the bodies through a Pebble snapshot: what Drop
// deletes after it was taken stays readable through it until it is closed.
// Close closes the views still open.
func (s *Store) Bodies() (eventlog.Bodies, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v := &bodies{s: s, snap: s.db.NewSnapshot()}
	s.vmu.Lock()
	s.views[v] = struct{}{}
	s.vmu.Unlock()
	return v, nil
}

// bodies is a view of the bodies (see Bodies).
type bodies struct {
	s    *Store
	snap *pebble.Snapshot
}

func (v *bodies) Body(id uint64) ([]byte, error) {
	if err := v.s.acquire(); err != nil {
		return nil, err
	}
	defer v.s.mu.RUnlock()
	b, closer, err := v.snap.Get(bodyKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("body %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("body %d: %w", id, markCorrupt(err))
	}
	body := bytes.Clone(b)
	return body, closer.Close()
}

// Close releases the snapshot, unless the store's Close already did.
func (v *bodies) Close() error {
	v.s.mu.RLock() // not while the store closes
	defer v.s.mu.RUnlock()
	v.s.vmu.Lock()
	_, open := v.s.views[v]
	delete(v.s.views, v)
	v.s.vmu.Unlock()
	if !open {
		return nil
	}
	return v.snap.Close()
}

// KeepsBodies reports true: bodies stay on disk and are read through Bodies.
func (s *Store) KeepsBodies() bool { return true }

// Drop deletes the bodies of events with id <= through and records that
// those ids are used. It does not sync.
func (s *Store) Drop(through uint64) error {
	if err := s.deleteThrough(prefixBody, keyDropped, through); err != nil {
		return fmt.Errorf("drop through %d: %w", through, err)
	}
	return nil
}

// Forget deletes the index (dedupe) entries of events with id <= through.
// It does not sync.
func (s *Store) Forget(through uint64) error {
	if err := s.deleteThrough(prefixIndex, nil, through); err != nil {
		return fmt.Errorf("forget through %d: %w", through, err)
	}
	return nil
}

// deleteThrough deletes prefix's ids <= through in one range tombstone,
// raises m/next past through and, when mark is set, raises mark to through.
func (s *Store) deleteThrough(prefix, mark []byte, through uint64) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(prefix, rangeEnd(prefix, through), nil); err != nil {
		return err
	}
	if through < ^uint64(0) {
		if err := b.Merge(keyNext, u64(through+1), nil); err != nil {
			return err
		}
	}
	if mark != nil {
		if err := b.Merge(mark, u64(through), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	s.maybeCompact(prefix, through)
	return nil
}

// maybeCompact starts a background compaction of prefix's ids <= through
// when CompactAfter ids were deleted since the last one and none is running.
// Called with s.mu read-held, so Close waits for the goroutine's start.
func (s *Store) maybeCompact(prefix []byte, through uint64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.compacting || through < s.compacted[prefix[0]]+s.compactAfter {
		return
	}
	s.compacting = true
	s.compactions.Add(1)
	go func() {
		defer s.compactions.Done()
		start, end := prefix, rangeEnd(prefix, through)
		err := s.db.Compact(s.ctx, start, end, false)
		s.cmu.Lock()
		defer s.cmu.Unlock()
		s.compacting = false
		switch {
		case err == nil:
			s.compacted[prefix[0]] = max(s.compacted[prefix[0]], through)
		case s.ctx.Err() == nil: // not cancelled by Close; the next Drop retries
			s.logger.Warn("compact deleted range", "dir", s.dir, "prefix", string(prefix), "through", through, "err", err)
		}
	}()
}

// SaveClients writes changed clients and deletes the others, and syncs the
// write-ahead log: a client change left unsynced sits in Pebble's in-process
// WAL buffer until a later synced write, so a crash of the process alone
// would lose it.
func (s *Store) SaveClients(changed []eventlog.ClientState, deleted []string) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	var v []byte
	for _, c := range changed {
		v = appendClient(v[:0], c)
		if err := b.Set(append(bytes.Clone(prefixClient), c.ID...), v, nil); err != nil {
			return fmt.Errorf("save client %s: %w", c.ID, err)
		}
	}
	for _, id := range deleted {
		if err := b.Delete(append(bytes.Clone(prefixClient), id...), nil); err != nil {
			return fmt.Errorf("delete client %s: %w", id, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("save clients: %w", err)
	}
	return nil
}

// Close flushes unsynced writes to disk and closes the database. Later
// calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.cancel()
	s.compactions.Wait()
	var errs []error
	s.vmu.Lock()
	for v := range s.views {
		if err := v.snap.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close snapshot: %w", err))
		}
	}
	clear(s.views)
	s.vmu.Unlock()
	if err := s.db.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("flush: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	s.cache.Unref()
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("unlock: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close pebble %s: %w", s.dir, err)
	}
	return nil
}

// events logs what an operator must see. Unlike Pebble's default, on-disk
// corruption does not exit the process: the read that found it fails, so
// one bad block costs the events in it, not the service.
func events(logger *slog.Logger, dir string) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			logger.Error("pebble background error", "dir", dir, "err", err.Error())
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			logger.Error("pebble on-disk corruption", "dir", dir, "path", info.Path,
				"bounds", info.Bounds.String(), "err", info.Details.Error())
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			logger.Warn("pebble disk slow", "dir", dir, "path", info.Path,
				"op", info.OpType.String(), "duration", info.Duration)
		},
	}
}

// pebbleLogger sends Pebble's messages to slog. Fatalf exits the process as
// Pebble's default logger does: Pebble calls it when continuing could lose
// or corrupt data (a failed WAL sync), and the next Open recovers.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// Metrics returns Pebble's metrics (LSM shape, compactions, WAL, caches),
// or nil when the store is closed.
func (s *Store) Metrics() *pebble.Metrics {
	if s.acquire() != nil {
		return nil
	}
	defer s.mu.RUnlock()
	return s.db.Metrics()
}
