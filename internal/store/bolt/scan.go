package bolt

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
)

// beforeScanBegin, when set (by tests), runs in beginScan between taking the overlay's view and
// beginning the file's transaction.
var beforeScanBegin atomic.Pointer[func()]

// Scan implements store.Reader. It reads one consistent state (beginScan) in a single ordered
// pass that merges the overlay's cursors with the file's, so a scan that stops after n keys
// costs O(n) whatever the overlay holds. No lock is held while fn runs: fn may read or write
// the store.
func (d *DB) Scan(_ context.Context, prefix, after string, fn func(string, []byte) bool) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return store.ErrClosed
	}
	from := prefix
	if after != "" && after >= prefix {
		from = after + "\x00" // the least key after `after`
	}
	ov, tx, err := d.beginScan(prefix, from)
	if err != nil {
		return fmt.Errorf("scanning: %w", err)
	}
	defer tx.Rollback()
	defer func() { d.scanVisits.Add(int64(ov.visits())) }()
	c := tx.Bucket(bucketKV).Cursor()
	p := []byte(prefix)
	k, v := c.Seek([]byte(from))
	for {
		inFile := k != nil && bytes.HasPrefix(k, p)
		e, inMem := ov.peek()
		if !inFile && !inMem {
			return nil
		}
		var key string
		var val []byte
		if inMem && (!inFile || e.key <= string(k)) {
			ov.next(e.key)
			if inFile && e.key == string(k) {
				k, v = c.Next() // the overlay's entry is newer than the file's
			}
			if e.deleted {
				continue
			}
			key, val = e.key, append([]byte{}, e.value...)
		} else {
			key, val = string(k), bytes.Clone(v) // bbolt's slice dies with the transaction
			k, v = c.Next()
		}
		if !fn(key, val) {
			return nil
		}
	}
}

// beginScan returns a cursor over the overlay and a read transaction of the file that together
// hold the store's state at one moment. The overlay's trees are taken first, then the
// transaction begun, without holding the overlay's lock across Begin (which can wait for a
// remap of the file, itself waiting for other readers). The file then holds at most the frozen
// memtable's checkpoint, whose entries the cursor shows anyway, unless mem was frozen and
// checkpointed in between: that is checked after Begin, and the rare loser starts again.
func (d *DB) beginScan(prefix, from string) (*overlayCursor, *bbolt.Tx, error) {
	if d.ov == nil {
		tx, err := d.db.Begin(false)
		return newOverlayCursor(overlayView{}, prefix, from), tx, err
	}
	for {
		v := d.ov.view()
		if hook := beforeScanBegin.Load(); hook != nil { // tests: writes and a checkpoint right here
			(*hook)()
		}
		tx, err := d.db.Begin(false)
		if err != nil {
			return nil, nil, err
		}
		if d.ov.current(v) {
			return newOverlayCursor(v, prefix, from), tx, nil
		}
		tx.Rollback()
	}
}
