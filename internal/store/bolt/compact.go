package bolt

import (
	"context"
	"fmt"
	"os"

	bbolt "go.etcd.io/bbolt"
)

// Compact rewrites the store into a fresh file holding only live records and replaces the old
// file with it. bbolt reuses freed pages without clearing them, so after a purge the deleted
// ciphertext stays in the file until its pages are overwritten; compaction is how Strongroom
// makes it leave the data folder (secure deletion). Writes wait while it runs; reads wait for the
// final swap.
func (d *DB) Compact(ctx context.Context) error {
	return d.submit(ctx, &request{run: d.compact, err: make(chan error, 1)})
}

// compact runs on the commit loop, so no write is in flight.
func (d *DB) compact() error {
	path := d.db.Path()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bbolt.Open(tmp, 0o600, fileOptions())
	if err != nil {
		return fmt.Errorf("compacting: opening %s: %w", tmp, err)
	}
	if err := bbolt.Compact(dst, d.db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compacting: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compacting: syncing: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compacting: %w", err)
	}
	// Swap under the exclusive lock: readers see the old file or the new one, never neither.
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("compacting: closing old file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return d.reopenAfter(path, fmt.Errorf("compacting: replacing file: %w", err))
	}
	if err := syncDir(path); err != nil {
		return d.reopenAfter(path, err)
	}
	if err := d.reopenAfter(path, nil); err != nil {
		return err
	}
	return d.scrubWAL()
}

func (d *DB) reopenAfter(path string, cause error) error {
	db, err := bbolt.Open(path, 0o600, fileOptions())
	if err != nil {
		// Without a file the store cannot go on; fail every later call loudly.
		d.closed = true
		return fmt.Errorf("compacting: reopening %s: %w (store closed)", path, err)
	}
	d.db = db
	return cause
}

func syncDir(file string) error {
	dir, err := os.Open(dirOf(file))
	if err != nil {
		return fmt.Errorf("compacting: syncing folder: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("compacting: syncing folder: %w", err)
	}
	return nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i+1]
		}
	}
	return "."
}
