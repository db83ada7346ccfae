package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
)

// keyApplied is the meta key holding the index of the last replicated log entry applied to this
// file (8 bytes, big endian). Only the Raft state machine writes it; a single-node store never has
// it. It is written in the same transaction as the data it describes, so after a crash the file
// and its applied index always agree and replaying the log skips exactly what is already here.
var keyApplied = []byte("applied")

// ApplyIndexed applies batches in order in one durable transaction and records index as the
// applied log index. It returns one result per batch (nil or an ErrConflict-wrapping error: a batch
// whose precondition fails changes nothing, like Apply) and an error only when the transaction
// itself failed, in which case nothing was applied. It bypasses the group-commit queue: the Raft
// state machine is its only caller and already applies entries one group at a time.
func (d *DB) ApplyIndexed(index uint64, batches [][]store.Op) ([]error, error) {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return nil, store.ErrClosed
	}
	if d.wal != nil {
		return nil, errors.New("applying log index: not available on a store with a write-ahead log")
	}
	results := make([]error, len(batches))
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		b.FillPercent = fillPercent
		for i, ops := range batches {
			if err := validateOps(ops); err != nil {
				results[i] = err
				continue
			}
			if err := applyOps(b, ops); err != nil {
				if !errors.Is(err, store.ErrConflict) {
					return err // a write error poisons the transaction
				}
				results[i] = err
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], index)
		return tx.Bucket(bucketMeta).Put(keyApplied, buf[:])
	})
	if err != nil {
		return nil, fmt.Errorf("applying log index %d: %w", index, err)
	}
	return results, nil
}

func validateOps(ops []store.Op) error {
	for _, op := range ops {
		if err := op.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// AppliedIndex returns the last log index recorded by ApplyIndexed (0 when none).
func (d *DB) AppliedIndex() (uint64, error) {
	var idx uint64
	err := d.view(func(tx *bbolt.Tx) error {
		idx = readApplied(tx)
		return nil
	})
	return idx, err
}

func readApplied(tx *bbolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Snapshot is a consistent, point-in-time view of the whole file, held open by a read
// transaction until Close. Writes continue meanwhile. It is not safe for concurrent use.
type Snapshot struct {
	tx *bbolt.Tx
	// Index is the applied log index the view includes.
	Index uint64
	// Size is the number of bytes WriteTo writes.
	Size int64
}

// Snapshot opens a consistent view of the file; the caller must Close it. With a write-ahead log,
// what is logged is checkpointed into the file first, so the view holds every acknowledged write.
func (d *DB) Snapshot() (*Snapshot, error) {
	if d.wal != nil {
		if err := d.submit(context.Background(), &request{err: make(chan error, 1), run: func() error { return nil }}); err != nil {
			return nil, fmt.Errorf("opening snapshot: %w", err)
		}
	}
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return nil, store.ErrClosed
	}
	tx, err := d.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("opening snapshot: %w", err)
	}
	return &Snapshot{tx: tx, Index: readApplied(tx), Size: tx.Size()}, nil
}

// WriteTo writes the view as a complete bbolt file that Restore (or Open) accepts.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.tx.WriteTo(w) }

// Close releases the view.
func (s *Snapshot) Close() error { return s.tx.Rollback() }

// Restore replaces the whole store with a file written by Snapshot.WriteTo. The new content is
// written to a temporary file, fsynced, checked (it must open as a store of this format) and
// rewritten with live pages only (stageRestore) before it replaces the current file, so a
// truncated or foreign stream leaves the store unchanged and no record deleted before the
// snapshot comes back in free pages. The replaced file is unlinked. Readers wait for the swap;
// in-flight group commits finish first.
func (d *DB) Restore(r io.Reader) error {
	if d.wal != nil {
		return errors.New("restoring: use RestoreLive on a store with a write-ahead log")
	}
	path := d.db.Path()
	tmp, err := stageRestore(path, r)
	if err != nil {
		return err
	}
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		os.Remove(tmp)
		return store.ErrClosed
	}
	return d.swapLocked(tmp, path)
}

// swapLocked replaces the store file at path with tmp and reopens it; call with closeMu held
// for writing and no write in flight.
func (d *DB) swapLocked(tmp, path string) error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("restoring: closing old file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return d.reopenAfter(path, fmt.Errorf("restoring: replacing file: %w", err))
	}
	if err := syncDir(path); err != nil {
		return d.reopenAfter(path, err)
	}
	return d.reopenAfter(path, nil)
}

func writeFileSync(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkFormat makes sure a restored file is a complete store of this format before it replaces
// the live one. The size check comes first: bbolt maps the file, and touching a page past the end
// of a truncated file kills the process (SIGBUS) instead of returning an error.
func checkFormat(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("checking snapshot file: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("checking snapshot file: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("checking snapshot file: truncated (%d of %d bytes)", fi.Size(), tx.Size())
		}
		for err := range tx.Check() {
			return fmt.Errorf("checking snapshot file: %w", err)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketKV) == nil {
			return fmt.Errorf("checking snapshot file: not a strongroom store")
		}
		if v := meta.Get(keyFormat); string(v) != formatVersion {
			return fmt.Errorf("checking snapshot file: unsupported store format %q (this build reads %q)", v, formatVersion)
		}
		return nil
	})
}
