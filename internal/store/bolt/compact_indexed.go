package bolt

import "github.com/strongroom/strongroom/internal/store"

// CompactIndexed is Compact for a Raft state-machine file: it rewrites the file with live pages
// only (the applied index included) on the caller's goroutine. Call it only from the goroutine
// that calls ApplyIndexed and Restore (Raft's apply goroutine), which makes the compaction the
// file's only writer; nothing may use Apply or Compact on such a file. Reads continue during the
// copy and wait for the swap.
func (d *DB) CompactIndexed() error {
	d.closeMu.RLock()
	closed := d.closed
	d.closeMu.RUnlock()
	if closed {
		return store.ErrClosed
	}
	return d.compact()
}
