// Package sysapi is a server's seal-state machine and its unauthenticated /sys routes. While
// sealed a server answers only /health, GET /sys/seal-status, POST /sys/init (Shamir) and POST
// /sys/unseal; once a seal releases the root key, Core opens the keyring and the identity
// service and asks its owner to build the serving state from them (Options.Build), to which it
// then hands every other request. It also replaces the root key (rekey, seal migration) in two
// phases so that every cluster member keeps a key that opens the keyring (rootkey.go), rebuilds
// the serving state after a snapshot restore (Reload), and hands a new bootstrap credential to
// the operator (admincred.go).
//
// Core knows the seals, the keyring, identities and the store's contract, not the domain service
// or the API handler: those are the serving state internal/app builds. Every /sys answer but
// seal status is audited (audit.Recorder) before it is sent, fail-closed, and errors use the Key
// Vault envelope (azkv.WriteError).
package sysapi
