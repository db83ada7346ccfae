package raftstore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Backup writes a consistent copy of the whole state-machine file as of a linearizable point
// (ReadBarrier on the leader, then one read transaction; writes continue meanwhile) and returns
// the applied log index the copy holds. Only the leader can take one.
func (s *Store) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if err := s.ReadBarrier(ctx); err != nil {
		return 0, fmt.Errorf("taking a backup: %w", err)
	}
	snap, err := s.db.Snapshot()
	if err != nil {
		return 0, fmt.Errorf("taking a backup: %w", err)
	}
	defer snap.Close()
	if _, err := snap.WriteTo(w); err != nil {
		return 0, fmt.Errorf("writing the backup: %w", err)
	}
	return snap.Index, nil
}

// RestoreBackup replaces the cluster's whole state with a file written by Backup (which held
// log index idx in its source cluster). It runs on the leader through Raft's user restore: the
// file becomes a snapshot at an index past both this log's end and idx, every member installs
// it, and writes in flight are aborted. size is the file's length.
func (s *Store) RestoreBackup(r io.Reader, size int64, idx uint64, timeout time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	if !s.IsLeader() {
		return ErrNotLeader
	}
	// Raft uses max(its last index, meta.Index)+1 as the snapshot's index, so the file's own
	// applied index (idx) stays below it and every later entry is applied on top.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: idx, Term: s.raft.CurrentTerm(), Size: size}
	if err := s.raft.Restore(meta, r, timeout); err != nil {
		return fmt.Errorf("restoring the backup: %w", err)
	}
	return nil
}

// lastSnapshotIndex is the index of this node's newest Raft snapshot (taken or installed).
func (s *Store) lastSnapshotIndex() uint64 {
	v, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	return v
}
