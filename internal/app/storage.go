package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// openStore opens the configured store: the single-node bbolt file by default, or this node's
// replica of a Raft cluster when cluster.addr is set (see cluster.go).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Cluster.Enabled() {
		return openClusterStore(ctx, cfg, log)
	}
	return bolt.OpenWithWAL(filepath.Join(cfg.DataDir, "strongroom.db"), bolt.WALOptions{CheckpointBytes: cfg.WALCheckpointBytes})
}

// wrapHandler lets the storage mode add routes or forwarding in front of the API handler; the
// single-node store adds nothing, a cluster node forwards to the leader while ready (unsealed
// and not shutting down) and never otherwise.
func wrapHandler(h http.Handler, st store.Store, ready func() bool) http.Handler {
	if cs, ok := st.(*clusterStore); ok {
		return cs.node.Handler(h, ready)
	}
	return h
}
