// Package seal releases and replaces Strongroom's root key. Every seal implements Seal, and New
// builds the one the server's configuration names:
//
//   - File (file.go) keeps the root key in a key file, "<data_dir>/seal.key" unless key_file says
//     otherwise. It protects nothing against someone who can read both that file and the data
//     folder; it exists so that `strongroom server` works with no setup, and says so in the log.
//   - Shamir (shamir.go) splits the root key into operator shares, a threshold of which must be
//     presented after every start (the seal also implements Shares).
//   - PKCS11 (pkcs11.go) keeps the root key wrapped by an AES key that never leaves an HSM.
//
// No seal stores the root key in the clear inside the data folder (the file seal's default path
// is the exception it warns about). The seal's configuration (Config) is recorded in the store at
// "sys/seal/config" (plaintext JSON, no key material) in the same write as the keyring sealed
// under the root key, so a server refuses to start with a seal other than the one it was
// initialized with.
//
// Replacing the root key (a rekey, or a migration to another seal) is two-phase, so that after a
// crash, and on every member of a cluster, some seal still releases a key that opens the
// keyring: Replace makes the new key; Stage keeps it where the seal will look for it (the file
// seal writes "<key_file>.next" durably) on every member; the caller commits the keyring
// re-sealed under it together with the new Config in one write; then Staged.Install puts the key
// in place, Change.Finish disposes of what the old key needed (the PKCS#11 seal's old HSM key),
// and after a migration the old seal's Retire removes its files. Until the commit the old seal
// unseals as before; after it a start finds the new key even if Install never ran.
package seal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/strongroom/strongroom/internal/config"
)

// Type names a seal. It is the configuration's type: the config file names the seal, this
// package implements it.
type Type = config.SealType

// The seal types.
const (
	File   = config.SealFile
	Shamir = config.SealShamir
	PKCS11 = config.SealPKCS11
)

// Seal is one data folder's seal: the server's seal configuration together with what the store
// recorded for it (nil before the data folder is initialized with it). Its methods are not safe
// for concurrent use, except Status and the Shares methods; the caller serializes them.
type Seal interface {
	// Type names the seal.
	Type() Type
	// Status reports the seal's type, its share parameters and how many shares are entered.
	Status() Status
	// Unseal releases the root key of an initialized data folder without operators. check says
	// whether a key opens the data folder's keyring: the file seal uses it to finish a rekey that
	// a crash interrupted between the commit and the key file's rename. The Shamir seal returns
	// ErrNeedsShares (operators present shares through Shares). The caller clears the key.
	Unseal(ctx context.Context, check KeyCheck) ([]byte, error)
	// Init makes the root key of a data folder that has none yet, and the Config to record in
	// the same write as the keyring sealed under it. The file seal reuses the key file when it
	// exists (it is written durably before Init returns); the PKCS#11 seal wraps the key under
	// the configured HSM key, creating that key when it is absent; the Shamir seal splits it
	// into p.Shares shares. Nothing else is written.
	Init(ctx context.Context, p Params) (*Change, error)
	// Replace makes a new root key for a data folder whose keyring is committed: a rekey when the
	// Seal was built with the recorded Config of this type, a migration to this seal when it was
	// built with none. Nothing is written until Stage (the PKCS#11 seal's new HSM key aside: a
	// rekey creates it, and Change.Finish destroys whichever key is no longer used).
	Replace(ctx context.Context, p Params) (*Change, error)
	// Stage keeps root where this seal will release it from, before the keyring sealed under it
	// is committed, and checks it can: the file seal writes "<key_file>.next" durably, the
	// PKCS#11 seal checks that its HSM unwraps the recorded wrapped key to root, the Shamir seal
	// keeps nothing (the operators hold the new shares). The Seal must have been built with the
	// Config that will be committed. An error means this node could not unseal under root.
	Stage(ctx context.Context, root []byte) (*Staged, error)
	// Retire removes this seal's material from the data folder once a migration to another seal
	// is committed (the file seal removes its key files; the others keep nothing there).
	Retire() error
}

// Shares is the operators' side of a seal they unseal by presenting shares (Shamir).
type Shares interface {
	// Add adds one base64 share. When the threshold is reached it returns the combined key and
	// forgets the shares; the caller checks the key, since wrong shares combine to a wrong key.
	// A malformed or repeated share is an error wrapping ErrBadShare.
	Add(share string) ([]byte, error)
	// Reset forgets the shares entered so far.
	Reset()
}

// Status is a seal's part of the seal status.
type Status struct {
	Type      Type
	Shares    int // Shamir: shares made
	Threshold int // Shamir: shares needed
	Progress  int // Shamir: shares entered since the last unseal or reset
}

// Params are the operators' choices for a new root key (Shamir only; zero elsewhere). A Shamir
// rekey with zero Shares keeps the recorded share counts.
type Params struct {
	Shares, Threshold int
}

// KeyCheck reports whether root opens the data folder's keyring: false and no error for a key
// that does not, an error when it could not tell.
type KeyCheck func(root []byte) (bool, error)

// ErrNeedsShares means the seal releases the root key only from operators' shares.
var ErrNeedsShares = errors.New("the seal is opened by operators' unseal shares")

// New builds the seal cfg names for the data folder dataDir. rec is the configuration the store
// recorded (nil when none is yet, or for a migration's target); its type must be cfg's.
func New(cfg config.SealConfig, dataDir string, rec *Config, log *slog.Logger) (Seal, error) {
	if rec != nil && rec.Type != cfg.Type {
		return nil, fmt.Errorf("the data folder uses the %q seal but the configuration says %q: set seal.type to %q (seals are changed on a running server with `strongroom operator seal migrate`)", rec.Type, cfg.Type, rec.Type)
	}
	switch cfg.Type {
	case File:
		return newFileSeal(cfg, dataDir, rec, log), nil
	case Shamir:
		return newShamirSeal(rec), nil
	case PKCS11:
		return newPKCS11Seal(cfg, rec, log)
	}
	return nil, fmt.Errorf("unknown seal type %q (want %s, %s or %s)", cfg.Type, File, Shamir, PKCS11)
}
