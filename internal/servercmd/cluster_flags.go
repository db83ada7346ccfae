package servercmd

import (
	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/config"
)

// addClusterFlags registers the server's cluster flags on cmd.
func addClusterFlags(cmd *cobra.Command, c *config.ClusterConfig) {
	f := cmd.Flags()
	f.StringVar(&c.Addr, "cluster-addr", "", "cluster address (host:port) for Raft and node-to-node TLS; setting it turns cluster mode on")
	f.StringVar(&c.Advertise, "cluster-advertise", "", "address other nodes dial to reach this one, when it differs from --cluster-addr (NAT, proxies)")
	f.StringVar(&c.NodeID, "node-id", "", "this node's permanent id in the cluster (required with --cluster-addr)")
	f.StringVar(&c.Region, "region", "", "region label of this node (default \"default\")")
	f.BoolVar(&c.Bootstrap, "bootstrap", false, "make this node the first voter of a new cluster (once, on one node)")
	f.BoolVar(&c.NonVoter, "non-voter", false, "stay a non-voting (disaster-recovery) replica; read when joining")
	f.DurationVar(&c.ElectionTimeout, "election-timeout", 0, "Raft heartbeat and election timeout (default 1s)")
	f.DurationVar(&c.PromoteAfter, "promote-after", 0, "how long a new node must be healthy before it becomes a voter (default 10s)")
	f.Uint64Var(&c.SnapshotThreshold, "snapshot-threshold", 0, "log entries between Raft snapshots (default 8192)")
	f.DurationVar(&c.SnapshotInterval, "snapshot-interval", 0, "how often the snapshot threshold is checked (default 2m)")
	f.Uint64Var(&c.TrailingLogs, "trailing-logs", 0, "log entries kept after a snapshot (default 10240)")
	f.DurationVar(&c.DeadServerAfter, "dead-server-after", 0, "remove a member unhealthy for this long (0: never)")
	f.IntVar(&c.MinQuorum, "min-quorum", 0, "fewest voters dead-server cleanup leaves (default 3)")
}

// overlayClusterFlags copies the cluster flags the user set explicitly onto the file configuration.
func overlayClusterFlags(cmd *cobra.Command, file, flags *config.ClusterConfig) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("cluster-addr", func() { file.Addr = flags.Addr })
	set("cluster-advertise", func() { file.Advertise = flags.Advertise })
	set("node-id", func() { file.NodeID = flags.NodeID })
	set("region", func() { file.Region = flags.Region })
	set("bootstrap", func() { file.Bootstrap = flags.Bootstrap })
	set("non-voter", func() { file.NonVoter = flags.NonVoter })
	set("election-timeout", func() { file.ElectionTimeout = flags.ElectionTimeout })
	set("promote-after", func() { file.PromoteAfter = flags.PromoteAfter })
	set("snapshot-threshold", func() { file.SnapshotThreshold = flags.SnapshotThreshold })
	set("snapshot-interval", func() { file.SnapshotInterval = flags.SnapshotInterval })
	set("trailing-logs", func() { file.TrailingLogs = flags.TrailingLogs })
	set("dead-server-after", func() { file.DeadServerAfter = flags.DeadServerAfter })
	set("min-quorum", func() { file.MinQuorum = flags.MinQuorum })
}
