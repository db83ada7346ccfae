package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
		Hooks:       clusterHooks{c},
		TrackPrefix: vaultRecordPrefix, AlwaysRefresh: []string{keyring.RingKey},
	})
}

// clusterHooks is the server as its cluster node sees it (cluster.StoreHooks). The store opens
// before the server can serve, because serving state is built from the store, so the node
// reaches back into it through these methods; Run makes the audit log and the metrics they use
// before it opens the store.
type clusterHooks struct{ c *core }

// AuditJoin writes a join attempt this (leader) node decided to its audit log.
func (h clusterHooks) AuditJoin(ctx context.Context, a cluster.JoinAttempt) error {
	return h.c.auditJoin(ctx, a)
}

// AuditOperator writes an operator call this node executed to its audit log.
func (h clusterHooks) AuditOperator(ctx context.Context, op string, status int) error {
	return h.c.auditOperator(ctx, op, status)
}

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

// auditJoin writes a join attempt to this (leader) node's audit log: the claimed node id, labels
// and address, the caller's address and the outcome; never the token.
func (c *core) auditJoin(ctx context.Context, a cluster.JoinAttempt) error {
	ip, _, err := net.SplitHostPort(a.RemoteAddr)
	if err != nil {
		ip = ""
	}
	desc := "admitted as a non-voter"
	switch {
	case a.Status == http.StatusForbidden:
		desc = "refused: the join token is unknown, used or expired"
	case a.Status == http.StatusConflict:
		desc = "refused: a member with this node id exists"
	case a.Status >= 500:
		desc = "failed"
	case a.Status >= 400:
		desc = "refused: malformed join request"
	}
	desc = fmt.Sprintf("node %q region %q cluster address %q dr replica %t: %s", a.NodeID, a.Region, a.ClusterAddr, a.NonVoter, desc)
	rec := sysRecord(a.Time, "ClusterJoin", a.Status, ip, c.cfg.PublicURL+"/sys/cluster/join")
	rec.ResultDescription, rec.Properties.ID = desc, a.NodeID
	if err := c.auditLog().Write(ctx, rec); err != nil {
		return fmt.Errorf("auditing a join attempt: %w", err)
	}
	return nil
}
