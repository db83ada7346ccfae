package app

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/keyring"
)

// vaultRecordPrefix is where the service keeps vault records (docs/architecture.md, Storage).
const vaultRecordPrefix = "arm/vault/"

// openClusterStore starts this node's replica of the cluster (internal/cluster, store.go). The
// service's vault records and the keyring are the cached copies a snapshot restore can make stale.
func openClusterStore(ctx context.Context, cfg config.Config, log *slog.Logger, c *core) (*cluster.Store, error) {
	return cluster.OpenStore(ctx, cluster.StoreOptions{
		DataDir: cfg.DataDir, Cluster: cfg.Cluster, Log: log, RaftLog: os.Stderr,
		Hooks: clusterHooks{c}, Audit: c.auditLog(), PublicURL: cfg.PublicURL,
		TrackPrefix: vaultRecordPrefix, AlwaysRefresh: []string{keyring.RingKey},
	})
}

// clusterHooks is the server as its cluster node sees it (cluster.StoreHooks). The store opens
// before the server can serve, because serving state is built from the store, so the node
// reaches back into it through these methods; Run makes the audit log and the metrics they use
// before it opens the store.
type clusterHooks struct{ c *core }

// Restored rebuilds the serving state after a snapshot restore replaced the store's file.
func (h clusterHooks) Restored() {
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.c.reload(rctx); err != nil {
		h.c.log.Error("reloading after a snapshot restore failed: restart this node", "err", err)
	}
}

// Compacted counts this node's compactions (each node counts its own, as it applies the request).
func (h clusterHooks) Compacted(err error) {
	if err != nil {
		h.c.metrics.CompactionFailure.Inc()
	} else {
		h.c.metrics.CompactionSuccess.Inc()
	}
}
