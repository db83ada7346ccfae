package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"
)

// ClusterConfig configures Raft clustering. The zero value means a single node on bbolt; setting
// Addr turns cluster mode on, and then NodeID is required.
type ClusterConfig struct {
	// Addr is the cluster listen address (host:port) for Raft and node-to-node RPCs, mutually
	// authenticated with the cluster CA's certificates. It is also the address other nodes dial,
	// so it must be reachable from them (not 0.0.0.0). Empty (default) means a single node.
	Addr string `yaml:"addr"`
	// Advertise is the address other nodes dial to reach this one (host:port), when it differs
	// from Addr: behind NAT, a port forward or a proxy. Default: Addr. Outbound cluster
	// connections leave from Addr's IP when Addr names one, so peers see a stable source.
	Advertise string `yaml:"advertise"`
	// NodeID names this node in the cluster; it never changes. Required in cluster mode:
	// letters, digits, '.', '_' and '-', at most 64.
	NodeID string `yaml:"node_id"`
	// Region labels the node (for example "westeurope"); informational, shown by list-peers and
	// used to keep DR replicas apart. Default "default".
	Region string `yaml:"region"`
	// Bootstrap makes this node the first voter of a new cluster when its data folder holds no
	// cluster state yet. Set it on exactly one node, once; ignored afterwards.
	Bootstrap bool `yaml:"bootstrap"`
	// NonVoter keeps this node a non-voting replica (a disaster-recovery replica): it receives
	// every committed entry and serves stale reads, but is never promoted by autopilot. Only
	// read when the node joins.
	NonVoter bool `yaml:"non_voter"`
	// RetryJoin lists leaders to join through at start-up when the node has not joined yet; each
	// is tried in turn until one accepts. Ignored once the node holds cluster state.
	RetryJoin []RetryJoin `yaml:"retry_join"`
	// ElectionTimeout is Raft's election timeout. Default 1s. Followers give up on a silent
	// leader after half of it (randomized up to all of it); the leader lease is a quarter.
	ElectionTimeout time.Duration `yaml:"election_timeout"`
	// PromoteAfter is how long a new node must stay healthy before autopilot makes it a voter.
	// Default 10s.
	PromoteAfter time.Duration `yaml:"promote_after"`
	// SnapshotThreshold is how many log entries trigger a Raft snapshot. Default 8192.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold"`
	// SnapshotInterval is how often the snapshot threshold is checked. Default 2m.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// TrailingLogs is how many entries stay in the log after a snapshot, for followers that are
	// briefly behind. Default 10240.
	TrailingLogs uint64 `yaml:"trailing_logs"`
	// DeadServerAfter is how long a member must stay unreachable or far behind before the leader's
	// autopilot removes it (never a DR replica, never below MinQuorum voters). 0 (default) = off.
	DeadServerAfter time.Duration `yaml:"dead_server_after"`
	// MinQuorum is the fewest voters dead-server cleanup leaves. Default 3.
	MinQuorum int `yaml:"min_quorum"`
}

// RetryJoin is one leader to join through.
type RetryJoin struct {
	// LeaderAPIAddr is the leader's (or any member's) API origin, e.g. "https://node1:8443".
	// Required.
	LeaderAPIAddr string `yaml:"leader_api_addr"`
	// LeaderCACertFile is a PEM file with the CA that signed that node's API certificate
	// (its <data_dir>/tls/ca.pem). Empty means the system roots.
	LeaderCACertFile string `yaml:"leader_ca_cert_file"`
	// JoinTokenFile holds the one-time join token from `strongroom operator raft join-token`.
	// Required; the token never appears in the config file itself.
	JoinTokenFile string `yaml:"join_token_file"`
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// AdvertiseAddr is the address other nodes dial: Advertise, or Addr.
func (c *ClusterConfig) AdvertiseAddr() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Addr
}

// Enabled reports whether cluster mode is on.
func (c *ClusterConfig) Enabled() bool { return c.Addr != "" }

// Validate checks the cluster settings and fills in defaults; the zero value (a single node) is
// valid, and any other field without Addr is an error.
func (c *ClusterConfig) Validate() error {
	if !c.Enabled() {
		if c.NodeID != "" || c.Bootstrap || c.NonVoter || len(c.RetryJoin) > 0 {
			return fmt.Errorf("cluster.addr: required when other cluster settings are given")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("cluster.addr: %q is not host:port with a fixed port", c.Addr)
	}
	if ip := net.ParseIP(host); c.Advertise == "" && (host == "" || (ip != nil && ip.IsUnspecified())) {
		return fmt.Errorf("cluster.addr: %q must name an address other nodes can dial, not a wildcard (or set cluster.advertise)", c.Addr)
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		ip := net.ParseIP(host)
		if err != nil || port == "" || port == "0" || host == "" || (ip != nil && ip.IsUnspecified()) {
			return fmt.Errorf("cluster.advertise: %q must be host:port that other nodes can dial", c.Advertise)
		}
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		return fmt.Errorf("cluster.node_id: %q must be 1-64 letters, digits, '.', '_' or '-'", c.NodeID)
	}
	if c.Region == "" {
		c.Region = "default"
	} else if !nodeIDPattern.MatchString(c.Region) {
		return fmt.Errorf("cluster.region: %q must be 1-64 letters, digits, '.', '_' or '-'", c.Region)
	}
	if c.Bootstrap && (c.NonVoter || len(c.RetryJoin) > 0) {
		return fmt.Errorf("cluster.bootstrap: cannot be combined with non_voter or retry_join")
	}
	for i, j := range c.RetryJoin {
		u, err := url.Parse(j.LeaderAPIAddr)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("cluster.retry_join[%d].leader_api_addr: %q must be an https origin", i, j.LeaderAPIAddr)
		}
		if j.JoinTokenFile == "" {
			return fmt.Errorf("cluster.retry_join[%d].join_token_file: required", i)
		}
	}
	switch {
	case c.ElectionTimeout == 0:
		c.ElectionTimeout = time.Second
	case c.ElectionTimeout < 50*time.Millisecond:
		return fmt.Errorf("cluster.election_timeout: must be at least 50ms")
	}
	if c.PromoteAfter == 0 {
		c.PromoteAfter = 10 * time.Second
	} else if c.PromoteAfter < 0 {
		return fmt.Errorf("cluster.promote_after: must not be negative")
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	} else if c.SnapshotInterval < 10*time.Millisecond {
		return fmt.Errorf("cluster.snapshot_interval: must be at least 10ms")
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.DeadServerAfter < 0 {
		return fmt.Errorf("cluster.dead_server_after: must not be negative")
	}
	if c.MinQuorum == 0 {
		c.MinQuorum = 3
	} else if c.MinQuorum < 1 {
		return fmt.Errorf("cluster.min_quorum: must be at least 1")
	}
	return nil
}
