package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
)

// afterCheckpointCommit, when set (by tests), runs after a checkpoint's transaction commits and
// before its segment is recycled; an error stops the checkpoint there.
var afterCheckpointCommit atomic.Pointer[func() error]

// checkpointJob hands a full memtable and the segment that logged it to the checkpointer.
type checkpointJob struct {
	mem *memtable
	seg segment
}

// commitLogged commits a group through the write-ahead log: each batch's preconditions are
// checked against the state left by the batches before it, the writes of those that hold go
// to the log as one record (one write, one fdatasync), and then into the overlay.
func (d *DB) commitLogged(group []*request) {
	d.collectCheckpoint(false)
	d.commits.Add(1)
	d.batches.Add(uint64(len(group)))
	results := make([]error, len(group))
	if err := d.failure(); err != nil {
		d.reply(group, results, fmt.Errorf("store unavailable after a write failure: %w", err))
		return
	}
	// The map and slice are reused from group to group (a fresh map per group was a tenth of
	// the bytes a write allocates), and emptied after each, so they keep no caller's value.
	staged, writes := d.staged, d.writes[:0]
	defer func() {
		clear(staged)
		clear(writes)
		d.writes = writes[:0]
	}()
	// The frozen memtable is taken once: the checkpointer may drop it from the overlay while the
	// group is checked, after writing it into the file, and a read transaction begun before that
	// must still see its entries. Only this goroutine changes mem, so it is read without the lock.
	d.ov.mu.RLock()
	frozen := d.ov.frozen
	d.ov.mu.RUnlock()
	var tx *bbolt.Tx
	current := func(key string) ([]byte, bool, error) {
		if e, ok := staged[key]; ok {
			return e.value, !e.deleted, nil
		}
		return d.committed(key, frozen, &tx)
	}
	for i, r := range group {
		if err := checkPreconditions(r.ops, current); err != nil {
			results[i] = err
			continue
		}
		if r.note != nil { // the audit intent, durable with the batch (store.NotedIntent)
			writes = append(writes, store.Op{Kind: store.OpNote, Key: "audit-intent", Value: r.note})
		}
		for _, op := range r.ops {
			switch op.Kind {
			case store.OpPut:
				staged[op.Key] = memEntry{key: op.Key, value: op.Value}
				writes = append(writes, op)
			case store.OpDelete:
				staged[op.Key] = memEntry{key: op.Key, deleted: true}
				writes = append(writes, store.Op{Kind: store.OpDelete, Key: op.Key})
			}
		}
	}
	if tx != nil {
		tx.Rollback() // before taking the overlay's lock below
	}
	if len(writes) == 0 {
		d.reply(group, results, nil)
		return
	}
	if err := d.logWrites(writes); err != nil {
		// The log's state on disk is unknown now (a failed fdatasync may have dropped pages):
		// stop accepting writes rather than acknowledge anything on top of it.
		d.fail(err)
		d.reply(group, results, fmt.Errorf("committing batch: %w", err))
		return
	}
	d.reply(group, results, nil)
	if d.checkpointDue() {
		if err := d.rotate(false); err != nil {
			d.fail(err)
		}
	}
}

// checkpointDue reports whether the current segment should be checkpointed: when what it adds
// to the overlay reaches the threshold (the notes riding with the batches are not in the
// overlay, and counting them made checkpoints a third more frequent under writes), or when the
// segment fills the size its file was prepared to.
func (d *DB) checkpointDue() bool {
	return d.wal.cur.off-d.wal.cur.notes >= d.checkpointAt || d.wal.cur.off >= segmentSize
}

// committed returns key's committed value: from the memtable, else the frozen memtable, else
// the file, read in *tx (begun on first need; the caller rolls it back).
func (d *DB) committed(key string, frozen *memtable, tx **bbolt.Tx) ([]byte, bool, error) {
	if e, ok := d.ov.mem.get(key); ok {
		return e.value, !e.deleted, nil
	}
	if frozen != nil {
		if e, ok := frozen.get(key); ok {
			return e.value, !e.deleted, nil
		}
	}
	if *tx == nil {
		var err error
		if *tx, err = d.db.Begin(false); err != nil {
			return nil, false, fmt.Errorf("checking preconditions: %w", err)
		}
	}
	v := (*tx).Bucket(bucketKV).Get([]byte(key))
	return v, v != nil, nil
}

// logWrites appends writes to the log as one record and then sets them in the memtable. An
// error leaves the log's state unknown; the caller stops the store.
func (d *DB) logWrites(writes []store.Op) error {
	payload, err := d.wal.append(writes)
	if err != nil {
		return err
	}
	for _, op := range writes {
		if op.Kind == store.OpNote {
			d.wal.cur.notes += int64(len(op.Key) + len(op.Value))
		}
	}
	// The overlay keeps values as slices of the record just written, which nothing reuses.
	logged, err := store.DecodeOps(payload)
	if err != nil {
		return err
	}
	d.ov.mu.Lock()
	for _, op := range logged {
		if op.Kind == store.OpNote { // rides in the log only
			continue
		}
		d.ov.setLocked(memEntry{key: op.Key, value: op.Value, deleted: op.Kind == store.OpDelete})
	}
	d.ov.mu.Unlock()
	return nil
}

// fail records the first write failure; later writes are refused with it.
func (d *DB) fail(err error) { d.failed.CompareAndSwap(nil, &err) }

// Failure returns the write failure that stopped the store from accepting writes (a log append
// or a checkpoint that failed), or nil. Reads go on; a restart replays the log.
func (d *DB) Failure() error { return d.failure() }

// failure returns the recorded write failure, if any.
func (d *DB) failure() error {
	if p := d.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// reply sends each request its result, or err to all of them when err is set.
func (d *DB) reply(group []*request, results []error, err error) {
	for i, r := range group {
		if err != nil && results[i] == nil {
			r.err <- err
		} else {
			r.err <- results[i]
		}
	}
}

func checkPreconditions(ops []store.Op, current func(string) ([]byte, bool, error)) error {
	for _, op := range ops {
		switch op.Kind {
		case store.OpRequireAbsent:
			_, ok, err := current(op.Key)
			if err != nil {
				return err
			}
			if ok {
				return fmt.Errorf("key %q exists: %w", op.Key, store.ErrConflict)
			}
		case store.OpRequireEqual:
			v, ok, err := current(op.Key)
			if err != nil {
				return err
			}
			if !ok || string(v) != string(op.Value) {
				return fmt.Errorf("key %q changed: %w", op.Key, store.ErrConflict)
			}
		}
	}
	return nil
}

func hasDeletePrefix(group []*request) bool {
	for _, r := range group {
		for _, op := range r.ops {
			if op.Kind == store.OpDeletePrefix {
				return true
			}
		}
	}
	return false
}

// collectCheckpoint takes the checkpointer's report if there is one (waiting for it when wait
// is set). It returns the checkpoint's error.
func (d *DB) collectCheckpoint(wait bool) error {
	if !d.ckptRunning {
		return nil
	}
	var err error
	if wait {
		err = <-d.ckptDone
	} else {
		select {
		case err = <-d.ckptDone:
		default:
			return nil
		}
	}
	d.ckptRunning = false
	if err != nil {
		d.fail(err)
	}
	return err
}

// rotate freezes the memtable, switches the log to the spare segment and hands both to the
// checkpointer. With one checkpoint still running it returns, unless force is set or the
// segment has grown to stallAt, in which case it waits for that checkpoint first.
func (d *DB) rotate(force bool) error {
	if d.ckptRunning {
		if !force && d.wal.cur.off < stallAt {
			return nil
		}
		if err := d.collectCheckpoint(true); err != nil {
			return err
		}
	}
	if d.wal.spare == nil {
		return errors.New("rotating the log: no spare segment (a checkpoint failed)")
	}
	d.ov.mu.Lock()
	job := checkpointJob{mem: d.ov.freezeLocked(), seg: d.wal.cur}
	spare := d.wal.spare
	d.wal.spare = nil
	d.ov.mu.Unlock()
	d.wal.cur = *spare // present: the previous checkpoint, now collected, left it
	d.ckptRunning = true
	d.ckptReq <- job
	return nil
}

// drain checkpoints everything logged so far and waits until the file holds it.
func (d *DB) drain() error {
	if err := d.collectCheckpoint(true); err != nil {
		return fmt.Errorf("checkpointing: %w", err)
	}
	if err := d.failure(); err != nil {
		return fmt.Errorf("store unavailable after a write failure: %w", err)
	}
	if d.wal.cur.off == 0 {
		return nil
	}
	if err := d.rotate(true); err != nil {
		return fmt.Errorf("checkpointing: %w", err)
	}
	if err := d.collectCheckpoint(true); err != nil {
		return fmt.Errorf("checkpointing: %w", err)
	}
	return nil
}

// checkpointLoop writes each frozen memtable into the file in one durable transaction that also
// records its segment as flushed, then recycles the segment file as the next spare and drops
// the memtable from the overlay.
func (d *DB) checkpointLoop() {
	defer d.wg.Done()
	for job := range d.ckptReq {
		err := d.checkpoint(job)
		d.ckptDone <- err
	}
}

func (d *DB) checkpoint(job checkpointJob) error {
	// Notes (audit intents) in the segment vanish with it: whoever keeps them makes the ones still
	// needed durable elsewhere first, before the file records the segment as flushed.
	if d.beforeCheckpoint != nil {
		if err := d.beforeCheckpoint(); err != nil {
			return fmt.Errorf("checkpointing log segment %d: %w", job.seg.seq, err)
		}
	}
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		b.FillPercent = fillPercent
		var err error
		job.mem.tree.Ascend(func(e memEntry) bool {
			if e.deleted {
				err = b.Delete([]byte(e.key))
			} else {
				err = b.Put([]byte(e.key), e.value)
			}
			if err != nil {
				err = fmt.Errorf("writing %q: %w", e.key, err)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
		return putWALFlushed(tx, job.seg.seq)
	})
	if err != nil {
		// The overlay keeps serving the frozen entries; the log still holds them for a restart.
		return fmt.Errorf("checkpointing log segment %d: %w", job.seg.seq, err)
	}
	if hook := afterCheckpointCommit.Load(); hook != nil { // tests: a crash between commit and recycling
		if err := (*hook)(); err != nil {
			return err
		}
	}
	// The segment's records are all in the file now: its file becomes the spare after the
	// current one, under that name, durably (a record is never acknowledged in a file whose
	// name could revert after a crash).
	next := job.seg.seq + 2
	oldPath := filepath.Join(d.wal.dir, segmentName(job.seg.seq))
	newPath := filepath.Join(d.wal.dir, segmentName(next))
	if err := os.Rename(oldPath, newPath); err != nil {
		return fmt.Errorf("recycling log segment: %w", err)
	}
	if err := syncDir(newPath); err != nil {
		return fmt.Errorf("recycling log segment: %w", err)
	}
	d.ov.mu.Lock()
	d.ov.frozen = nil
	d.wal.spare = &segment{f: job.seg.f, seq: next}
	d.ov.mu.Unlock()
	return nil
}

// stopWAL checkpoints what is logged (a clean stop leaves nothing to replay), stops the
// checkpointer and closes the segment files. It runs on the commit loop as it exits.
func (d *DB) stopWAL() {
	if d.ov == nil {
		return
	}
	if !d.abandoned {
		_ = d.drain() // on failure the log keeps the batches for the next start
	}
	_ = d.collectCheckpoint(true)
	close(d.ckptReq)
	d.wal.cur.f.Close()
	if d.wal.spare != nil {
		d.wal.spare.f.Close()
	}
}

// scrubWAL overwrites both segment files with zeros: after a compaction no old ciphertext may stay
// in the data folder. Call it with the overlay drained, on the commit loop.
func (d *DB) scrubWAL() error {
	if d.ov == nil {
		return nil
	}
	if d.wal.cur.off != 0 || d.wal.spare == nil {
		return errors.New("scrubbing the log: checkpoint pending")
	}
	for _, f := range []*os.File{d.wal.cur.f, d.wal.spare.f} {
		if err := zeroTo(f, segmentSize, true); err != nil {
			return fmt.Errorf("scrubbing the log: %w", err)
		}
	}
	return nil
}
