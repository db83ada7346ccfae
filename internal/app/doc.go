// Package app wires a Strongroom server together and runs it. Run builds it in dependency order:
// the listener, the audit log and the metrics registry, the store (a single bbolt file or this
// node's Raft replica, storage.go), the seal-state machine (internal/sysapi), which on unseal
// asks for the serving state built here (serving.go: the domain service, the API handler, the
// purger and the compactor), the snapshot jobs (internal/snapshots) and the HTTPS server with
// /metrics in front (internal/metrics/scrape); then a clean shutdown on SIGTERM. It is the only
// package that knows every other one. The commands that parse flags into a config.Config and
// call Run are in internal/servercmd.
package app
