package cluster

import (
	"context"
	"io"
	"time"

	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// SnapshotInfo is what a snapshot file's authenticated header says about it.
type SnapshotInfo struct {
	// Index is the applied log index of the store the file holds (0 for a single node's store).
	Index   uint64    `json:"index"`
	NodeID  string    `json:"nodeId,omitempty"`
	Created time.Time `json:"created"`
}

// OpenSnapshotFile authenticates and decrypts a whole snapshot file (the format of
// snapshot.go, used by both single-node and cluster snapshots) into dst, a plaintext bbolt store
// file. Any defect fails with ErrSnapshotRefused; the caller must not use dst unless it returns
// nil.
func OpenSnapshotFile(rs RootSealer, r io.Reader, dst io.Writer) (SnapshotInfo, error) {
	h, err := openSnapshot(rs, r, dst)
	clear(h.Key)
	return SnapshotInfo{Index: h.Index, NodeID: h.NodeID, Created: h.Created}, err
}

// SaveSnapshot writes an encrypted snapshot of the whole cluster to w (scheduled snapshots).
// Only the leader can take one (raftstore.ErrNotLeader otherwise); the node must be unsealed.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer) error {
	if !n.store.IsLeader() {
		return raftstore.ErrNotLeader
	}
	return n.writeSnapshot(ctx, w)
}

// IsLeader reports whether this node currently leads.
func (n *Node) IsLeader() bool { return n.store.IsLeader() }
