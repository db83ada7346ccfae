// Package snapshots takes encrypted snapshots of a running server's store and restores them
// (the file format is internal/snapshotfile's): a single node's snapshots of its bbolt file,
// served on its operator socket (`strongroom operator snapshot save|restore`; a cluster node's
// socket is internal/cluster's), and the schedule that writes snapshot files into a folder in
// both storage modes. A snapshot needs the unsealed root key: while sealed nothing is taken or
// restored.
package snapshots
