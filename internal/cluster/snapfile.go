package cluster

import (
	"context"
	"io"

	"github.com/strongroom/strongroom/internal/store/raftstore"
)

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
