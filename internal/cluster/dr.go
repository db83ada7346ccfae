package cluster

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// PromoteResult is what `operator dr promote` reports.
type PromoteResult struct {
	NodeID    string `json:"nodeId"`
	Region    string `json:"region"`
	LastIndex uint64 `json:"lastIndex"`
}

// PromoteDR turns a stopped disaster-recovery replica's data folder into a new single-node
// cluster with itself as the only voter: the old members are dropped from its configuration and
// everything in its log is applied. Use it only when the primary cluster is lost; start the
// server afterwards without --non-voter, then join new members with join tokens.
func PromoteDR(dataDir string) (PromoteResult, error) {
	mat, err := loadMaterial(filepath.Join(dataDir, "cluster"))
	if err != nil {
		return PromoteResult{}, fmt.Errorf("promoting: reading cluster membership: %w", err)
	}
	if c, err := net.DialTimeout("unix", SocketPath(dataDir), time.Second); err == nil {
		c.Close()
		return PromoteResult{}, fmt.Errorf("promoting: the server on %s is running: stop it first", dataDir)
	}
	last, err := raftstore.RecoverAlone(filepath.Join(dataDir, "raft"), raft.ServerID(mat.nodeDoc.ID), raft.ServerAddress(mat.nodeDoc.Addr))
	if err != nil {
		return PromoteResult{}, err
	}
	return PromoteResult{NodeID: mat.nodeDoc.ID, Region: mat.nodeDoc.Region, LastIndex: last}, nil
}
