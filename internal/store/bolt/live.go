package bolt

import (
	"context"
	"fmt"
	"io"
	"os"
)

// RestoreLive replaces the whole store of a running single-node server with a file written by
// Snapshot.WriteTo. Like Restore, the new content is written to a temporary file, fsynced and
// checked before anything changes; the swap itself runs on the commit loop (as compaction does),
// so no group commit is in flight, and readers wait for it. Batches queued after it apply to the
// restored file.
func (d *DB) RestoreLive(ctx context.Context, r io.Reader) error {
	d.closeMu.RLock()
	path := d.db.Path()
	d.closeMu.RUnlock()
	tmp := path + ".restore"
	_ = os.Remove(tmp)
	if err := writeFileSync(tmp, r); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restoring: %w", err)
	}
	if err := checkFormat(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restoring: %w", err)
	}
	err := d.submit(ctx, &request{err: make(chan error, 1), run: func() error { return d.swapIn(tmp) }})
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
	return d.swapLocked(tmp, d.db.Path())
}
