// Package bolt is the single-node Store: one bbolt file, every batch durable before Apply returns,
// and concurrent batches group-committed so durability does not cost throughput. It stores the
// sealed bytes it is given and nothing else.
//
// Two modes. Open commits each group as one durable bbolt transaction (the Raft state machine
// uses it: Raft's log is its write-ahead log). OpenWithWAL, the single-node server's store,
// commits each group as one record of a write-ahead log (wal.go) and checkpoints the logged
// batches into the file in the background; readers see the log's batches through an in-memory
// overlay until then.
//
// On-disk format (version 1): bucket "meta" holds key "format" = "1" (and "walFlushed", see
// wal.go); bucket "kv" holds every record, keyed by its storage key. bbolt never shrinks its
// file; freed pages are reused.
package bolt

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
)

const formatVersion = "1"

var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	keyFormat  = []byte("format")
)

// fillPercent is how full bbolt leaves a page it splits. Most inserts land at one spot of a
// key range (new versions go right before their head, version ids grow with time), where
// bbolt's default of 50 % leaves every split page half empty for good; 90 % halves the pages
// a large store has and the pages a commit dirties (docs/benchmarks.md).
const fillPercent = 0.9

// maxGroup bounds how many batches share one transaction, so one commit's latency stays bounded.
const maxGroup = 512

// DB is a bbolt-backed store.Store. It is safe for concurrent use.
type DB struct {
	db      *bbolt.DB
	path    string // the store file
	pending chan *request
	done    chan struct{}
	closeMu sync.RWMutex
	closed  bool
	wg      sync.WaitGroup

	commits, batches atomic.Uint64 // for CommitStats
	scanVisits       atomic.Int64  // overlay entries scans took, for tests

	// Write-ahead log mode only (nil otherwise).
	ov           *overlay
	wal          *wal
	ckptReq      chan checkpointJob
	ckptDone     chan error
	checkpointAt int64                 // logged bytes that start a checkpoint
	ckptRunning  bool                  // the commit loop's view: a checkpoint was handed over and not reported
	staged       map[string]memEntry   // commitLogged's scratch, emptied after each group
	writes       []store.Op            // likewise
	failed       atomic.Pointer[error] // the log or a checkpoint failed; writes are refused from then on
	abandoned    bool                  // tests: stop like a crash, without the final checkpoint
	// beforeCheckpoint is WALOptions.BeforeCheckpoint.
	beforeCheckpoint func() error
}

var _ store.Store = (*DB)(nil)

type request struct {
	ops []store.Op
	// note is the request's audit intent, logged with its batch (store.NotedIntent); ctx is the
	// request's, for the rare group that is not logged (journaled then: intentFallback).
	note []byte
	ctx  context.Context
	run  func() error // run this on the commit loop instead of ops (no write in flight): compaction, live restore
	err  chan error
}

// Open opens (creating if needed) the store file at path with mode 0600. Every group commit is a
// durable bbolt transaction.
func Open(path string) (*DB, error) { return open(path, nil) }

// OpenWithWAL opens the store file at path with a write-ahead log in the folder path+".wal",
// replaying into the file whatever the log holds that the file does not (after a crash).
func OpenWithWAL(path string, o WALOptions) (*DB, error) {
	switch {
	case o.CheckpointBytes == 0:
		o.CheckpointBytes = defaultCheckpointBytes
	case o.CheckpointBytes < MinCheckpointBytes || o.CheckpointBytes > segmentSize:
		return nil, fmt.Errorf("opening store %s: checkpoint size %d outside %d-%d bytes", path, o.CheckpointBytes, MinCheckpointBytes, segmentSize)
	}
	return open(path, &o)
}

// open opens the file, with a write-ahead log when wal is set.
func open(path string, wal *WALOptions) (*DB, error) {
	db, err := bbolt.Open(path, 0o600, fileOptions())
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyFormat); v == nil {
			if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
		} else if string(v) != formatVersion {
			return fmt.Errorf("unsupported store format %q (this build reads %q)", v, formatVersion)
		}
		_, err = tx.CreateBucketIfNotExists(bucketKV)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initializing store %s: %w", path, err)
	}
	d := &DB{db: db, path: path, pending: make(chan *request, 4096), done: make(chan struct{})}
	if wal != nil {
		w, err := recoverWAL(db, path+".wal", wal.Notes)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("opening store %s: %w", path, err)
		}
		d.wal, d.checkpointAt, d.beforeCheckpoint = w, wal.CheckpointBytes, wal.BeforeCheckpoint
		d.ov = &overlay{mem: newMemtable(0)}
		d.staged = make(map[string]memEntry, 2*maxGroup)
		d.ckptReq = make(chan checkpointJob, 1)
		d.ckptDone = make(chan error, 1)
		d.wg.Add(1)
		go d.checkpointLoop()
	}
	d.wg.Add(1)
	go d.commitLoop()
	return d, nil
}

// Get implements store.Reader.
func (d *DB) Get(_ context.Context, key string) ([]byte, error) {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return nil, store.ErrClosed
	}
	if d.ov != nil {
		// A miss here and a read of the file below see a consistent state: checkpoints only move
		// older entries into the file, and remove them from the overlay after they are there.
		if e, ok := d.ov.lookup(key); ok {
			if e.deleted {
				return nil, store.ErrNotFound
			}
			return append([]byte{}, e.value...), nil
		}
	}
	var out []byte
	err := d.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		out = bytes.Clone(v) // bbolt's slice dies with the transaction
		return nil
	})
	return out, err
}

func (d *DB) view(fn func(*bbolt.Tx) error) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return store.ErrClosed
	}
	return d.db.View(fn)
}

// Apply implements store.Store. Preconditions of a batch are checked before any of its writes.
func (d *DB) Apply(ctx context.Context, ops []store.Op) error {
	for _, op := range ops {
		if err := op.Validate(); err != nil {
			return err
		}
		// Checked here so that a batch accepted into the log can always reach the file.
		if len(op.Key) > bbolt.MaxKeySize || len(op.Value) > bbolt.MaxValueSize {
			return fmt.Errorf("validating op on %.64q: key or value too large", op.Key)
		}
	}
	if err := d.failure(); err != nil {
		return fmt.Errorf("store unavailable after a write failure: %w", err)
	}
	// The request's audit record first: in the log record of the batch itself when the log can
	// carry it, else durable on its own before the batch is submitted.
	req := &request{ops: ops, err: make(chan error, 1), ctx: ctx}
	if d.ov != nil && !hasDeletePrefixOps(ops) {
		note, noted, err := store.IntentNote(ctx)
		if err != nil {
			return fmt.Errorf("recording the request's intent: %w", err)
		}
		if noted {
			req.note = note
		}
	}
	if req.note == nil {
		if err := store.RecordIntent(ctx); err != nil {
			return fmt.Errorf("recording the request's intent: %w", err)
		}
	}
	return d.submit(ctx, req)
}

// submit queues req for the commit loop and waits for its verdict.
func (d *DB) submit(ctx context.Context, req *request) error {
	d.closeMu.RLock()
	if d.closed {
		d.closeMu.RUnlock()
		return store.ErrClosed
	}
	select {
	case d.pending <- req:
	case <-ctx.Done():
		d.closeMu.RUnlock()
		return ctx.Err()
	}
	d.closeMu.RUnlock()
	// Once queued, the request will be done or failed; wait for the verdict even if ctx ends,
	// so a caller never reports failure for a write that became durable.
	return <-req.err
}

// commitLoop is the only writer. It takes every batch that queued while the previous commit was
// fsyncing and commits them together: group commit without an artificial delay.
func (d *DB) commitLoop() {
	defer d.wg.Done()
	group := make([]*request, 0, maxGroup)
	for {
		var first *request
		select {
		case first = <-d.pending:
		case <-d.done:
			d.failPending()
			d.stopWAL()
			return
		}
		if first.run != nil {
			first.err <- d.exclusive(first.run)
			continue
		}
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-d.pending:
				if r.run != nil {
					if len(group) > 0 {
						d.commit(group)
						group = group[:0]
					}
					r.err <- d.exclusive(r.run)
					continue
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		if len(group) == 0 {
			continue
		}
		d.commit(group)
	}
}

// CommitStats reports how many bbolt transactions the group commit made and how many batches
// they carried: their ratio is the average group size.
func (d *DB) CommitStats() (commits, batches uint64) {
	return d.commits.Load(), d.batches.Load()
}

func (d *DB) commit(group []*request) {
	if d.ov != nil {
		if !hasDeletePrefix(group) {
			d.commitLogged(group)
			return
		}
		// A prefix delete would need range tombstones in the overlay: checkpoint everything,
		// then apply the group straight to the file (such batches are rare: vault purges).
		// Requests whose intent was to travel in the log record make it durable on its own.
		group = intentFallback(group)
		if err := d.drain(); err != nil {
			for _, r := range group {
				r.err <- err
			}
			return
		}
	}
	d.commitFile(group)
}

// intentFallback makes the intents of group's noted requests durable on their own (the group
// is committed to the file, not logged), answering and dropping those whose intent fails.
func intentFallback(group []*request) []*request {
	kept := group[:0]
	for _, r := range group {
		if r.note != nil {
			if err := store.RecordIntent(r.ctx); err != nil {
				r.err <- fmt.Errorf("recording the request's intent: %w", err)
				continue
			}
			r.note = nil
		}
		kept = append(kept, r)
	}
	return kept
}

func hasDeletePrefixOps(ops []store.Op) bool {
	for _, op := range ops {
		if op.Kind == store.OpDeletePrefix {
			return true
		}
	}
	return false
}

// exclusive runs fn on the commit loop with everything logged checkpointed into the file first,
// so fn sees (and may replace) the whole store.
func (d *DB) exclusive(fn func() error) error {
	if d.ov != nil {
		if err := d.drain(); err != nil {
			return err
		}
	}
	return fn()
}

// commitFile commits a group as one durable bbolt transaction.
func (d *DB) commitFile(group []*request) {
	d.commits.Add(1)
	d.batches.Add(uint64(len(group)))
	results := make([]error, len(group))
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		b.FillPercent = fillPercent
		for i, r := range group {
			results[i] = applyOps(b, r.ops)
		}
		return nil
	})
	for i, r := range group {
		if err != nil {
			r.err <- fmt.Errorf("committing batch: %w", err)
		} else {
			r.err <- results[i]
		}
	}
}

func applyOps(b *bbolt.Bucket, ops []store.Op) error {
	for _, op := range ops {
		switch op.Kind {
		case store.OpRequireAbsent:
			if b.Get([]byte(op.Key)) != nil {
				return fmt.Errorf("key %q exists: %w", op.Key, store.ErrConflict)
			}
		case store.OpRequireEqual:
			if v := b.Get([]byte(op.Key)); v == nil || !bytes.Equal(v, op.Value) {
				return fmt.Errorf("key %q changed: %w", op.Key, store.ErrConflict)
			}
		}
	}
	for _, op := range ops {
		var err error
		switch op.Kind {
		case store.OpPut:
			err = b.Put([]byte(op.Key), op.Value)
		case store.OpDelete:
			err = b.Delete([]byte(op.Key))
		case store.OpDeletePrefix:
			err = deletePrefix(b, []byte(op.Key))
		}
		if err != nil {
			// A bbolt write error inside an open transaction poisons it; report it for the whole group.
			return fmt.Errorf("writing %q: %w", op.Key, err)
		}
	}
	return nil
}

func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (d *DB) failPending() {
	for {
		select {
		case r := <-d.pending:
			r.err <- store.ErrClosed
		default:
			return
		}
	}
}

// Close stops the writer after the batches already queued and closes the file.
func (d *DB) Close() error {
	d.closeMu.Lock()
	if d.closed {
		d.closeMu.Unlock()
		return nil
	}
	d.closed = true
	d.closeMu.Unlock()
	// Commit what is queued before stopping: those callers are waiting for a verdict.
	for len(d.pending) > 0 {
		time.Sleep(time.Millisecond)
	}
	close(d.done)
	d.wg.Wait()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	return nil
}

// Path returns the file path, for operators and tests.
func (d *DB) Path() string { return d.path } // fixed at open: a compaction swaps d.db, not its path

// fileOptions are the bbolt options of the store file. The free list is written with every
// commit (NoFreelistSync off), so an open reads it instead of walking every page of the file
// to rebuild it: at 1,000,000 secrets (a 1.8 GB file) that walk took 1.2 s warm, 44 s with a
// cold page cache, and left the whole file resident; reading the list takes milliseconds. The
// price is the list's pages in each commit, 8 bytes per free page (docs/benchmarks.md); a
// compaction empties it. The list is the array kind: written at every commit, the hashmap kind
// collects and sorts every free page id each time (4.5 ms a commit with 17,000 free pages,
// against 0.8 ms), while the array kind keeps them sorted. A file written without the list
// (builds before this one) gets it at its first open, which walks the file once more; older
// builds still open either. The initial mapping reserves 1 GiB of address space (not memory):
// bbolt otherwise remaps at every doubling of the file, and a remap holds every reader back.
func fileOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: 5 * time.Second, FreelistType: bbolt.FreelistArrayType, InitialMmapSize: 1 << 30}
}
