package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// A sealed node cannot serve: while it leads, every request through every node fails. Raft
// gives no way to keep a voter from campaigning, so a node that finds itself leading while
// sealed (or shutting down) hands leadership at once to a voter that is unsealed, asking each
// voter's status over the cluster port; when no voter is unsealed it keeps leading (moving
// leadership among sealed nodes would only add elections).

// sealedCheckEvery is how often a leader checks its own seal state; leadership changes are
// also noticed at once through Raft's leader channel.
const sealedCheckEvery = 200 * time.Millisecond

// serving reports whether this node may serve API requests (see Handler); true until the
// handler is installed.
func (n *Node) serving() bool {
	if f := n.ready.Load(); f != nil && *f != nil {
		return (*f)()
	}
	return true
}

func (n *Node) sealedLeaderWatch() {
	defer n.wg.Done()
	tick := time.NewTicker(sealedCheckEvery)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-n.stop:
			return
		case <-n.store.Raft().LeaderCh():
		case <-tick.C:
		}
		if !n.store.IsLeader() || n.serving() || time.Since(last) < time.Second {
			continue
		}
		last = time.Now()
		n.handOffLeadership()
	}
}

// handOffLeadership transfers leadership to an unsealed voter, if there is one.
func (n *Node) handOffLeadership() {
	f := n.store.Raft().GetConfiguration()
	if f.Error() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID || s.Suffrage != raft.Voter {
			continue
		}
		st, err := n.peerStatus(ctx, string(s.Address))
		if err != nil || st.Sealed {
			continue
		}
		if err := n.store.Raft().LeadershipTransferToServer(s.ID, s.Address).Error(); err != nil {
			n.log.Warn("this node is sealed and leads: handing leadership over failed", "to", s.ID, "err", err)
			return
		}
		n.log.Warn("this node is sealed: handed leadership to an unsealed voter", "to", s.ID)
		return
	}
	n.log.Warn("this node is sealed and leads, and no unsealed voter answered: unseal a node")
}
