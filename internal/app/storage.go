package app

import (
	"context"
	"net/http"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/metrics/raftmetrics"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// openStore opens the configured store: the single-node bbolt file by default, or this node's
// replica of a Raft cluster when cluster.addr is set (cluster.go). s must already hold its audit
// log and metrics: a cluster node audits and compacts from the moment it starts.
func openStore(ctx context.Context, s *server) (store.Store, error) {
	if s.cfg.Cluster.Enabled() {
		cs, err := openClusterStore(ctx, s)
		if err != nil {
			return nil, err
		}
		s.metrics.MustRegister(raftmetrics.New(cs))
		return cs, nil
	}
	// Audit intents travel in the log with their batches; the audit log keeps them past a
	// checkpoint and records the ones a crash left without an outcome.
	return bolt.OpenWithWAL(filepath.Join(s.cfg.DataDir, "strongroom.db"), bolt.WALOptions{CheckpointBytes: s.cfg.WALCheckpointBytes,
		Notes: s.audit.RecoverNotes, BeforeCheckpoint: s.audit.PersistNotes})
}

// clusterNode is the cluster node behind a store, or nil for a single node.
func clusterNode(st store.Store) *cluster.Node {
	if cs, ok := st.(*cluster.Store); ok {
		return cs.Node()
	}
	return nil
}

// wrapHandler lets the storage mode add routes or forwarding in front of the API handler; the
// single-node store adds nothing, a cluster node forwards to the leader while ready (unsealed
// and not shutting down) and never otherwise.
func wrapHandler(h http.Handler, st store.Store, ready func() bool) http.Handler {
	if cs, ok := st.(*cluster.Store); ok {
		return cs.Handler(h, ready)
	}
	return h
}

// bindStore makes a cluster store keep svc's caches current and hands its node the unsealed
// keyring (cluster.Store.Bind); call the returned function when svc is dropped (seal). It is a
// no-op for the single-node store.
func bindStore(st store.Store, svc *service.Service, kr *keyring.Keyring) (unbind func()) {
	if cs, ok := st.(*cluster.Store); ok {
		return cs.Bind(svc, kr)
	}
	return func() {}
}
