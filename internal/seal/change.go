package seal

import (
	"crypto/rand"
	"fmt"

	"github.com/strongroom/strongroom/internal/keyring"
)

// rootKeySize is the size of the root key every seal releases.
const rootKeySize = keyring.KeySize

// Change is a new root key made by Init or Replace, not yet committed.
type Change struct {
	// Root is the new 32-byte root key; the caller clears it.
	Root []byte
	// Config is recorded in the same write as the keyring sealed under Root.
	Config Config
	// Shares are the Shamir seal's new unseal shares (base64), to hand out once; nil otherwise.
	Shares []string
	// Note says, for the log, what the change means for the operators.
	Note string

	finish func(Outcome) error
}

// Outcome is what became of a Change's commit.
type Outcome int

// The outcomes of a commit.
const (
	// Committed: the keyring sealed under the new root key was written.
	Committed Outcome = iota
	// NotCommitted: nothing was written; the change is abandoned.
	NotCommitted
	// Unknown: the write may still take effect (a cluster that lost its leader mid-commit).
	Unknown
)

// Finish ends a change made by Replace once the outcome of its commit is known, and must be
// called for every such change: the PKCS#11 seal then destroys the HSM key that is no longer
// used (the old one after a commit, the new one when nothing was committed, neither when the
// outcome is unknown) and closes its session. The other seals have nothing to do. An error means
// the change stands but something was left behind (the error says what).
func (c *Change) Finish(o Outcome) error {
	if c == nil || c.finish == nil {
		return nil
	}
	f := c.finish
	c.finish = nil
	return f(o)
}

// Staged is a root key a seal keeps (Stage) for a change not yet committed.
type Staged struct {
	install func(root []byte) error
	drop    func() error
}

// Install puts the staged key in place once the keyring sealed under it is committed: the file
// seal renames "<key_file>.next" over the key file. root may be nil (a sealed node holds no key
// in memory): the key is read back from where it was staged. Crash-safe: until the rename the
// file seal's Unseal finds the committed key in "<key_file>.next".
func (s *Staged) Install(root []byte) error {
	if s == nil || s.install == nil {
		return nil
	}
	return s.install(root)
}

// Drop forgets the staged key: the change was abandoned before its commit.
func (s *Staged) Drop() error {
	if s == nil || s.drop == nil {
		return nil
	}
	return s.drop()
}

// newRootKey makes a fresh 32-byte root key.
func newRootKey() ([]byte, error) {
	root := make([]byte, rootKeySize)
	if _, err := rand.Read(root); err != nil {
		return nil, fmt.Errorf("generating root key: %w", err)
	}
	return root, nil
}
