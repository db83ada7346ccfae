// Package raftstore is the replicated store.Store: every batch is a command in a
// github.com/hashicorp/raft log (kept by raft-boltdb/v2) and is applied, on every node, onto a
// store/bolt file that serves as the state machine and as its own snapshot.
//
// Invariants:
//   - Apply returns nil only after the batch is committed by a quorum and applied to this node's
//     file, so a caller reads its own writes on the node it wrote through. A follower forwards
//     the encoded batch to the leader (Options.Forward) and then waits for its own file to reach
//     the entry's index.
//   - Batches are deterministic (store.Store's contract): preconditions are evaluated by the state
//     machine, so the same entry succeeds or fails identically on every node.
//   - The applied log index is written in the same bbolt transaction as the data; replays skip
//     what is already there, and snapshots are consistent read transactions of the file.
//   - Get and Scan read this node's file: on a follower they may be stale. Linearizable reads
//     go through the leader after ReadBarrier.
//   - Like every store, it only ever sees ciphertext; it never logs keys' values.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Sentinel errors.
var (
	// ErrNoLeader means no leader was known within the caller's deadline.
	ErrNoLeader = errors.New("no cluster leader")
	// ErrNotLeader means this node is not the leader; a forwarded request may be retried.
	ErrNotLeader = errors.New("not the cluster leader")
)

// ForwardFunc sends an encoded batch to the leader and returns the log index it was committed
// at, or an error that wraps store.ErrConflict (the batch was applied as a no-op), ErrNotLeader
// (the target was not the leader; nothing was applied) or anything else (outcome unknown).
type ForwardFunc func(ctx context.Context, leader raft.ServerAddress, id raft.ServerID, entry []byte) (uint64, error)

// Options configure Open. Dir, ID and Transport are required.
type Options struct {
	// Dir holds raft.db (log and stable store), fsm.db (the state machine) and snapshots/.
	Dir string
	// ID is this node's stable server id; Transport carries Raft RPCs and knows its address.
	ID        raft.ServerID
	Transport raft.Transport
	// Bootstrap makes this node the first voter of a new cluster when it has no Raft state yet.
	Bootstrap bool
	// Forward sends a follower's batch to the leader; nil makes Apply on a follower fail with
	// ErrNotLeader.
	Forward ForwardFunc
	// OnApplied is called on Raft's apply goroutine after each group of entries is durable in
	// this node's file, with the keys written by successful batches (prefix deletes report the
	// prefix), or with restored=true after a snapshot replaced the whole file.
	OnApplied func(keys []string, restored bool)
	// Timing; zero values take hashicorp/raft's defaults (1 s heartbeat and election timeouts).
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold (default 8192 entries) and SnapshotInterval (default 2 min) say when a
	// snapshot is taken; TrailingLogs (default 10240) entries stay after it for slow followers.
	SnapshotThreshold, TrailingLogs uint64
	SnapshotInterval                time.Duration
	// Logger receives Raft's own log lines; nil discards them.
	Logger hclog.Logger
}

// Store is a node of a Raft-replicated store. It is safe for concurrent use.
type Store struct {
	opts  Options
	raft  *raft.Raft
	fsm   *fsm
	db    *bolt.DB
	logs  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore

	notify    chan bool
	readyMu   sync.Mutex
	readyTerm uint64 // term in which this leader's state machine caught up (Barrier done)
	stop      chan struct{}
	wg        sync.WaitGroup

	closeMu sync.RWMutex
	closed  bool
}

var _ store.Store = (*Store)(nil)

// Open starts the node. It does not wait for a leader; see WaitLeader.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" || opts.ID == "" || opts.Transport == nil {
		return nil, fmt.Errorf("opening raft store: Dir, ID and Transport are required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening raft store: %w", err)
	}
	s := &Store{opts: opts, notify: make(chan bool, 16), stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()
	var err error
	if s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(opts.Dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("opening raft log: %w", err)
	}
	if s.snaps, err = raft.NewFileSnapshotStoreWithLogger(filepath.Join(opts.Dir, "snapshots"), 3, opts.Logger); err != nil {
		return nil, fmt.Errorf("opening snapshot store: %w", err)
	}
	if s.db, err = bolt.Open(filepath.Join(opts.Dir, "fsm.db")); err != nil {
		return nil, err
	}
	if s.fsm, err = newFSM(s.db, opts.OnApplied); err != nil {
		return nil, err
	}
	cache, err := raft.NewLogCache(512, s.logs)
	if err != nil {
		return nil, err
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = opts.ID
	cfg.Logger = opts.Logger
	cfg.NotifyCh = s.notify
	cfg.BatchApplyCh = true
	setDur(&cfg.HeartbeatTimeout, opts.HeartbeatTimeout)
	setDur(&cfg.ElectionTimeout, opts.ElectionTimeout)
	setDur(&cfg.LeaderLeaseTimeout, opts.LeaderLeaseTimeout)
	setDur(&cfg.SnapshotInterval, opts.SnapshotInterval)
	if opts.SnapshotThreshold > 0 {
		cfg.SnapshotThreshold = opts.SnapshotThreshold
	}
	if opts.TrailingLogs > 0 {
		cfg.TrailingLogs = opts.TrailingLogs
	}
	// The file is the state machine: restoring the latest snapshot on start is only needed when
	// the file is older than that snapshot (for example after it was lost).
	cfg.NoSnapshotRestoreOnStart = true
	if metas, err := s.snaps.List(); err == nil && len(metas) > 0 && metas[0].Index > s.fsm.applied.Load() {
		cfg.NoSnapshotRestoreOnStart = false
	}
	if opts.Bootstrap {
		has, err := raft.HasExistingState(cache, s.logs, s.snaps)
		if err != nil {
			return nil, fmt.Errorf("reading raft state: %w", err)
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: opts.ID, Address: opts.Transport.LocalAddr()}}}
			if err := raft.BootstrapCluster(cfg, cache, s.logs, s.snaps, opts.Transport, conf); err != nil {
				return nil, fmt.Errorf("bootstrapping cluster: %w", err)
			}
		}
	}
	if s.raft, err = raft.NewRaft(cfg, s.fsm, cache, s.logs, s.snaps, opts.Transport); err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	s.wg.Add(1)
	go s.watchLeadership()
	ok = true
	return s, nil
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

// watchLeadership makes a new leader catch its state machine up (Barrier) before ReadBarrier
// lets it serve linearizable reads.
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.notify:
			s.readyMu.Lock()
			s.readyTerm = 0
			s.readyMu.Unlock()
			if !leader {
				continue
			}
			// Not tracked by wg: a barrier queued just before Shutdown may never be answered.
			go func(term uint64) {
				if err := s.raft.Barrier(0).Error(); err != nil {
					return
				}
				s.readyMu.Lock()
				if s.raft.CurrentTerm() == term && s.raft.State() == raft.Leader {
					s.readyTerm = term
				}
				s.readyMu.Unlock()
			}(s.raft.CurrentTerm())
		}
	}
}

// Raft exposes the node for membership and status operations.
func (s *Store) Raft() *raft.Raft { return s.raft }

// AppliedIndex is the last log index applied to this node's file.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// DB is this node's state-machine file, for node-local operations (compaction, inspection).
func (s *Store) DB() *bolt.DB { return s.db }

// IsLeader reports whether this node currently believes it leads.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// WaitLeader waits until some leader is known.
func (s *Store) WaitLeader(ctx context.Context) (raft.ServerAddress, raft.ServerID, error) {
	for {
		if addr, id := s.raft.LeaderWithID(); addr != "" {
			return addr, id, nil
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("waiting for a leader: %w (%w)", ErrNoLeader, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitApplied waits until this node's file includes log index idx. Entries the state machine
// never sees (Raft's no-op and barrier entries) count as included once Raft has handed out every
// entry up to idx and the file holds the last command or configuration entry among them.
func (s *Store) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		ch := s.fsm.waitCh()
		applied := s.fsm.applied.Load()
		if applied >= idx {
			return nil
		}
		if s.raft.AppliedIndex() >= idx && s.lastStateEntry(applied, idx) <= applied {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for log index %d (applied %d): %w", idx, s.fsm.applied.Load(), ctx.Err())
		case <-s.stop:
			return store.ErrClosed
		}
	}
}

// lastStateEntry returns the highest index in (from, to] of an entry the state machine applies
// (a command or a configuration change), or from when there is none. Entries at or below the
// newest snapshot are in the file once Raft has applied past it (the snapshot was taken from the
// file or installed into it), even where the file's own index is lower (a restored backup).
func (s *Store) lastStateEntry(from, to uint64) uint64 {
	var l raft.Log
	for i := to; i > from; i-- {
		if err := s.logs.GetLog(i, &l); err != nil {
			if i <= s.lastSnapshotIndex() {
				return from
			}
			return i // unknown: assume it must be applied
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return from
}

// ReadBarrier makes a following local read linearizable: it fails with ErrNotLeader unless this
// node is the leader, waits until this leader's state machine has caught up in its term, confirms
// leadership with a quorum (VerifyLeader) and waits for the commit index seen before that.
func (s *Store) ReadBarrier(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	for {
		if s.raft.State() != raft.Leader {
			return ErrNotLeader
		}
		s.readyMu.Lock()
		ready := s.readyTerm != 0 && s.readyTerm == s.raft.CurrentTerm()
		s.readyMu.Unlock()
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the new leader to catch up: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("verifying leadership: %w (%w)", ErrNotLeader, err)
	}
	return s.WaitApplied(ctx, commit)
}

func (s *Store) check() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// Get implements store.Reader on this node's file.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.db.Get(ctx, key)
}

// Scan implements store.Reader on this node's file.
func (s *Store) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) bool) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.db.Scan(ctx, prefix, after, fn)
}

// Apply implements store.Store: quorum commit, then applied on this node.
func (s *Store) Apply(ctx context.Context, ops []store.Op) error {
	for _, op := range ops {
		if err := op.Validate(); err != nil {
			return err
		}
	}
	if err := s.check(); err != nil {
		return err
	}
	// The request's audit record is durable on the node that took the request before its batch
	// goes to the leader (which records the forwarded batch itself).
	if err := store.RecordIntent(ctx); err != nil {
		return fmt.Errorf("recording the request's intent: %w", err)
	}
	idx, err := s.applyEntry(ctx, encodeOps(ops))
	if err != nil {
		return err
	}
	return s.WaitApplied(ctx, idx)
}

// ApplyLeader commits an entry a follower forwarded and returns its log index. It fails with
// ErrNotLeader, having applied nothing, when this node does not lead.
func (s *Store) ApplyLeader(entry []byte) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if s.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	idx, err := s.applyLocal(entry)
	if errors.Is(err, raft.ErrNotLeader) {
		return 0, ErrNotLeader
	}
	return idx, err
}

// applyEntry commits an encoded batch and returns its log index; on a follower it forwards the
// entry to the leader, retrying while leadership moves, until ctx ends.
func (s *Store) applyEntry(ctx context.Context, entry []byte) (uint64, error) {
	for {
		if err := s.check(); err != nil {
			return 0, err
		}
		if s.raft.State() == raft.Leader {
			idx, err := s.applyLocal(entry)
			if !errors.Is(err, raft.ErrNotLeader) {
				return idx, err
			}
		} else if addr, id := s.raft.LeaderWithID(); addr != "" && id != s.opts.ID {
			if s.opts.Forward == nil {
				return 0, ErrNotLeader
			}
			idx, err := s.opts.Forward(ctx, addr, id, entry)
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
				return idx, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("applying batch: %w (%w)", ErrNoLeader, ctx.Err())
		case <-s.stop:
			return 0, store.ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) applyLocal(entry []byte) (uint64, error) {
	if _, err := decodeOps(entry); err != nil {
		return 0, err // never let a malformed entry into the log
	}
	f := s.raft.Apply(entry, 10*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, err
		}
		return 0, fmt.Errorf("committing batch: %w", err)
	}
	if rerr, _ := f.Response().(error); rerr != nil {
		return f.Index(), rerr
	}
	return f.Index(), nil
}

// Close stops Raft (without leaving the cluster) and closes the files.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	var errs []error
	if err := s.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("stopping raft: %w", err))
	}
	close(s.stop)
	s.wg.Wait()
	if c, ok := s.opts.Transport.(io.Closer); ok {
		c.Close()
	}
	errs = append(errs, s.closeFiles())
	return errors.Join(errs...)
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	return errors.Join(errs...)
}
