package raftstore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/strongroom/strongroom/internal/store/bolt"
)

// RecoverAlone rewrites a stopped node's Raft state in dir so that it forms a new cluster with
// itself as the only voter (disaster recovery: the rest of the cluster is lost). It applies
// every entry in the node's log to its state machine, including entries the old cluster may
// not have committed (their writes were never acknowledged, or were acknowledged and are kept),
// snapshots the result and stores the new configuration. It returns the last index the node holds.
// The node must not be running.
func RecoverAlone(dir string, id raft.ServerID, addr raft.ServerAddress) (uint64, error) {
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
		return 0, fmt.Errorf("recovering: no raft log in %s: %w", dir, err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return 0, fmt.Errorf("recovering: opening raft log: %w", err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "snapshots"), 3, os.Stderr)
	if err != nil {
		return 0, fmt.Errorf("recovering: opening snapshot store: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "fsm.db"))
	if err != nil {
		return 0, fmt.Errorf("recovering: %w", err)
	}
	defer db.Close()
	f, err := newFSM(db, nil)
	if err != nil {
		return 0, err
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = id
	_, trans := raft.NewInmemTransport(addr)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: id, Address: addr}}}
	if err := raft.RecoverCluster(cfg, recoveryFSM{f}, logs, logs, snaps, trans, conf); err != nil {
		return 0, fmt.Errorf("recovering: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("recovering: reading last index: %w", err)
	}
	return max(last, f.applied.Load()), nil
}

// recoveryFSM releases its snapshot once persisted: RecoverCluster never calls Release, and an
// open read transaction would keep the file from closing.
type recoveryFSM struct{ *fsm }

func (r recoveryFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := r.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	return releasing{s}, nil
}

type releasing struct{ raft.FSMSnapshot }

func (r releasing) Persist(sink raft.SnapshotSink) error {
	defer r.Release()
	return r.FSMSnapshot.Persist(sink)
}
