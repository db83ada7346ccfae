package config

// ClusterConfig configures Raft clustering. The zero value means a single node on bbolt.
type ClusterConfig struct{}

// Validate checks the cluster settings; the zero value (a single node) is valid.
func (c *ClusterConfig) Validate() error { return nil }
