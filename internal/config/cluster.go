package config

// ClusterConfig configures Raft clustering. The zero value means a single node on bbolt.
type ClusterConfig struct{}
