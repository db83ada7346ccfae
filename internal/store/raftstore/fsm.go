package raftstore

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// fsm is the replicated state machine: committed log entries applied onto a bbolt store file
// (store/bolt's format), with the applied log index stored in the same transaction as the data.
// Entries at or below that index are skipped, so replaying the log after a restart never applies
// a batch twice, and the file itself is the snapshot (no separate restore on start).
//
// Only Raft's apply goroutine calls ApplyBatch, Snapshot and Restore; readers use db directly.
type fsm struct {
	db        *bolt.DB
	applied   atomic.Uint64
	onApplied func(keys []string, restored bool)

	mu      sync.Mutex
	advance chan struct{} // closed and replaced whenever applied moves
}

var (
	_ raft.BatchingFSM = (*fsm)(nil)
	_ raft.FSMSnapshot = (*fsmSnapshot)(nil)
)

func newFSM(db *bolt.DB, onApplied func([]string, bool)) (*fsm, error) {
	idx, err := db.AppliedIndex()
	if err != nil {
		return nil, fmt.Errorf("reading applied index: %w", err)
	}
	f := &fsm{db: db, onApplied: onApplied, advance: make(chan struct{})}
	f.applied.Store(idx)
	return f, nil
}

// Apply implements raft.FSM for single entries.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a run of committed entries in one bbolt transaction. Each command entry's
// response is nil or the batch's error (a precondition failure wraps store.ErrConflict); the
// same entry gives the same response on every node.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	if len(logs) == 0 {
		return resp
	}
	last := logs[len(logs)-1].Index
	done := f.applied.Load()
	if last <= done {
		return resp // replayed after a restart: already in the file
	}
	var batches [][]store.Op
	var slot []int
	for i, l := range logs {
		if l.Index <= done || l.Type != raft.LogCommand {
			continue
		}
		ops, err := decodeOps(l.Data)
		if err != nil {
			// The leader decodes every entry before committing it, so a committed entry that
			// does not decode was damaged on this node's disk (or written by a newer format).
			// Skipping it would make this node serve state without a committed write: stop.
			panic(fmt.Sprintf("raftstore: committed log entry %d is unreadable on this node: %v", l.Index, err))
		}
		batches = append(batches, ops)
		slot = append(slot, i)
	}
	results, err := f.db.ApplyIndexed(last, batches)
	if err != nil {
		// The file could not be written: this node cannot follow the log any more. Carrying on
		// would make it serve state that misses committed writes, so stop here.
		panic(fmt.Sprintf("raftstore: applying committed entries up to %d: %v", last, err))
	}
	var keys []string
	for j, r := range results {
		resp[slot[j]] = r
		if r == nil && f.onApplied != nil {
			for _, op := range batches[j] {
				if op.Kind == store.OpPut || op.Kind == store.OpDelete || op.Kind == store.OpDeletePrefix {
					keys = append(keys, op.Key)
				}
			}
		}
	}
	// Caches are refreshed before the index moves, so whoever waits for it (a write's
	// WaitApplied, a ReadBarrier) also sees caches that include the entry (a revoked
	// principal, a vault).
	if len(keys) > 0 {
		f.onApplied(keys, false)
	}
	f.setApplied(last)
	return resp
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.mu.Lock()
	close(f.advance)
	f.advance = make(chan struct{})
	f.mu.Unlock()
}

// waitCh returns a channel closed at the next advance of the applied index.
func (f *fsm) waitCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.advance
}

// Snapshot opens a read transaction on the file: the snapshot is the file as of the last applied
// entry, written out by Persist while writes continue.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.db.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{snap: s}, nil
}

// Restore replaces the file with a snapshot (a node that fell behind the leader's log, or an
// operator restore). The snapshot carries its own applied index.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.db.Restore(rc); err != nil {
		return err
	}
	idx, err := f.db.AppliedIndex()
	if err != nil {
		return err
	}
	f.setApplied(idx)
	if f.onApplied != nil {
		f.onApplied(nil, true)
	}
	return nil
}

type fsmSnapshot struct{ snap *bolt.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.snap.Close() }
