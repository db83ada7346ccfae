package app

import (
	"context"

	"github.com/strongroom/strongroom/internal/snapshotfile"
	"github.com/strongroom/strongroom/internal/snapshots"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// startSnapshotJobs serves a single node's operator socket (a cluster node's is the cluster
// package's) and runs the snapshot schedule when one is configured; stop ends both.
func (s *server) startSnapshotJobs(ctx context.Context) (stop func(), err error) {
	sched := &snapshots.Schedule{Config: s.cfg.Snapshots, Metrics: s.metrics, Log: s.log, Sealed: s.sys.Sealed}
	stopSock := func() {}
	if node := clusterNode(s.st); node != nil {
		sched.Save, sched.Leads = node.SaveSnapshot, node.IsLeader
	} else {
		single := &snapshots.SingleNode{DB: s.st.(*bolt.DB), DataDir: s.cfg.DataDir, Log: s.log,
			Audit: s.auditLog(), Sealer: s.rootSealer, Reload: s.sys.Reload}
		if stopSock, err = single.ServeSocket(); err != nil {
			return nil, err
		}
		sched.Save = single.Save
	}
	if !s.cfg.Snapshots.Enabled() {
		return stopSock, nil
	}
	sctx, stopSched := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sched.Run(sctx) }()
	return func() { stopSched(); <-done; stopSock() }, nil
}

// rootSealer is the unsealed keyring, which seals snapshot headers; nil while sealed.
func (s *server) rootSealer() snapshotfile.RootSealer {
	if u := s.sys.Serving(); u != nil {
		return u.Keyring
	}
	return nil
}
