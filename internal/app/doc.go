// Package app wires a Strongroom server together and runs it: configuration, data folder, seal,
// store, keyring, identities, service, audit log and the HTTPS listener, then a clean shutdown on
// SIGTERM. It is the only package that knows every other one. Run is its entry point; the
// commands that parse flags into a config.Config and call it are in internal/servercmd.
package app
