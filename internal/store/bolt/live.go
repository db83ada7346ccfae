package bolt

import (
	"context"
	"fmt"
	"io"
	"os"
)

// RestoreLive replaces the whole store of a running single-node server with a file written by
// Snapshot.WriteTo. Like Restore, the new content is written to a temporary file, fsynced,
// checked and rewritten with live pages only before anything changes; the swap itself runs on
// the commit loop (as compaction does), so no group commit is in flight, and readers wait for
// it. Batches queued after it apply to the restored file. A restore destroys every record the
// snapshot lacks, so it erases as a compaction does: the old file is unlinked and the log's
// segments are zeroed.
func (d *DB) RestoreLive(ctx context.Context, r io.Reader) error {
	d.closeMu.RLock()
	path := d.db.Path()
	d.closeMu.RUnlock()
	tmp, err := stageRestore(path, r)
	if err != nil {
		return err
	}
	err = d.submit(ctx, &request{err: make(chan error, 1), run: func() error { return d.swapIn(tmp) }})
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// swapIn replaces the file with tmp under the exclusive lock; it runs on the commit loop.
func (d *DB) swapIn(tmp string) error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return fmt.Errorf("restoring: store closed")
	}
	if d.wal != nil {
		// The log is drained; mark every segment so far as flushed into the restored file, so
		// a restart never replays pre-restore batches onto it.
		if err := setWALFlushed(tmp, d.wal.cur.seq-1); err != nil {
			return fmt.Errorf("restoring: %w", err)
		}
	}
	if err := d.swapLocked(tmp, d.db.Path()); err != nil {
		return err
	}
	// The segments, all flushed, still hold pre-restore batches until they are recycled.
	return d.scrubWAL()
}
