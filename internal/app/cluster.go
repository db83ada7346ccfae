package app

import (
	"context"
	"os"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/keyring"
)

// vaultRecordPrefix is where the service keeps vault records (docs/architecture.md, Storage).
const vaultRecordPrefix = "arm/vault/"

// openClusterStore starts this node's replica of the cluster (internal/cluster, store.go). The
// service's vault records and the keyring are the cached copies a snapshot restore can make stale.
func openClusterStore(ctx context.Context, s *server) (*cluster.Store, error) {
	return cluster.OpenStore(ctx, cluster.StoreOptions{
		DataDir: s.cfg.DataDir, Cluster: s.cfg.Cluster, Log: s.log, RaftLog: os.Stderr,
		Hooks: clusterHooks{s}, Audit: s.auditLog(), PublicURL: s.cfg.PublicURL,
		TrackPrefix: vaultRecordPrefix, AlwaysRefresh: []string{keyring.RingKey},
	})
}

// clusterHooks is the server as its cluster node sees it (cluster.StoreHooks). The store opens
// before the server can serve, because serving state is built from the store, so the node
// reaches back into it through these methods. open makes the metrics Compacted uses before the
// store, and the seal-state machine Restored uses right after it: the node calls Restored only
// while a service is bound, which is after an unseal.
type clusterHooks struct{ s *server }

// Restored rebuilds the serving state after a snapshot restore replaced the store's file.
func (h clusterHooks) Restored() {
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.s.sys.Reload(rctx); err != nil {
		h.s.log.Error("reloading after a snapshot restore failed: restart this node", "err", err)
	}
}

// Compacted counts this node's compactions (each node counts its own, as it applies the request).
func (h clusterHooks) Compacted(err error) {
	if err != nil {
		h.s.metrics.CompactionFailure.Inc()
	} else {
		h.s.metrics.CompactionSuccess.Inc()
	}
}
