package pebblestore

// CheckFree reports whether the disk guard would refuse an Append now: an
// error wrapping ErrDiskFull while the data dir's filesystem has less than
// Options.MinFreeBytes free, nil otherwise (also when the free space cannot
// be read, or the guard is disabled). Readiness probes and metrics call it.
func (s *Store) CheckFree() error { return s.checkFree() }
