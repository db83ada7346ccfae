package sysapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/seal"
)

// A rekey or seal migration is two-phase so that every member of a cluster keeps a root key
// that opens the keyring (docs/security-model.md, "Rekeying a cluster"):
//
//  1. stage: the leader makes the new root key and every member (the leader first, then the
//     others over the cluster port, internal/cluster/rootkey.go) keeps it where its seal needs
//     it: the file seal writes "<key_file>.next" durably, Shamir keeps it in memory, PKCS#11
//     checks that its HSM unwraps the new wrapped key to it. A voter that cannot stage aborts
//     the rekey before anything is committed.
//  2. commit: the keyring re-sealed under the new key and the new seal configuration are one
//     Raft (or single-node) write. A member whose root key no longer opens the keyring then
//     tries its staged key (keyring.StagedRoot) and, when it opens it, adopts it: the file seal
//     renames "<key_file>.next" over the key file. A start-up after a crash between the two
//     phases does the same from the file (autoRootKey).

// stagedRoot is this node's staged root key.
type stagedRoot struct {
	id     string
	key    []byte      // nil while this node is sealed: the seal's material is on disk or with operators
	cfg    seal.Config // the seal configuration committed with it
	next   seal.Seal   // this node's seal once it is committed
	staged *seal.Staged
	from   seal.Seal // this node's seal when it was staged
}

// StageRootKey stages a root key sent by the cluster leader (cluster.RootKeyStager).
func (c *Core) StageRootKey(ctx context.Context, s cluster.RootKeyStage) error {
	var cfg seal.Config
	if err := json.Unmarshal(s.Seal, &cfg); err != nil {
		return fmt.Errorf("malformed seal configuration")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stageLocked(ctx, s.ID, s.Key, cfg)
}

// DropRootKey forgets stage id (cluster.RootKeyStager).
func (c *Core) DropRootKey(id string) {
	c.stageMu.Lock()
	st := c.staged
	if st == nil || st.id != id {
		c.stageMu.Unlock()
		return
	}
	c.staged = nil
	c.stageMu.Unlock()
	clear(st.key)
	if err := st.staged.Drop(); err != nil {
		c.log.Error("dropping a staged root key", "err", err)
	}
	c.log.Warn("dropped a staged root key: the rekey was abandoned", "stage", id)
}

// stageLocked keeps key where the seal cfg.Type needs it on this node. c.mu is held.
func (c *Core) stageLocked(ctx context.Context, id string, key []byte, cfg seal.Config) error {
	sc := c.cfg.Seal
	sc.Type = cfg.Type
	next, err := seal.New(sc, c.cfg.DataDir, &cfg, c.log)
	if err != nil {
		return err
	}
	staged, err := next.Stage(ctx, key)
	if err != nil {
		return err
	}
	st := &stagedRoot{id: id, cfg: cfg, next: next, staged: staged, from: c.sealer}
	if !c.Sealed() { // a sealed node holds no key in memory; it unseals from its seal
		st.key = bytes.Clone(key)
	}
	c.stageMu.Lock()
	old := c.staged
	c.staged = st
	c.stageMu.Unlock()
	if old != nil {
		clear(old.key)
	}
	return nil
}

// stagedRootKey is the keyring's StagedRoot hook.
func (c *Core) stagedRootKey() ([]byte, func()) {
	c.stageMu.Lock()
	defer c.stageMu.Unlock()
	st := c.staged
	if st == nil || st.key == nil {
		return nil, nil
	}
	return bytes.Clone(st.key), func() {
		c.finishStage(st.id, false)
		c.log.Warn("the keyring was re-sealed under a new root key by the cluster leader: adopted the staged key", "stage", st.id, "seal", st.cfg.Type)
	}
}

// finishStage installs stage id once its keyring is committed: the new seal puts its key in
// place (the file seal renames its new key file), the old seal's material leaves the data
// folder after a migration, and the node's seal follows the new configuration. locked says
// whether c.mu is held (the leader's rekey); otherwise (Raft's apply goroutine) the seal state
// is updated asynchronously.
func (c *Core) finishStage(id string, locked bool) {
	c.stageMu.Lock()
	st := c.staged
	if st == nil || st.id != id {
		c.stageMu.Unlock()
		return
	}
	c.staged = nil
	c.stageMu.Unlock()
	if err := st.staged.Install(st.key); err != nil {
		// The next start still finds the new key where it was staged.
		c.log.Error("installing the new root key", "err", err)
	}
	if st.from != nil && st.from.Type() != st.next.Type() {
		if err := st.from.Retire(); err != nil {
			c.log.Error("removing the old seal's key files", "err", err)
		}
		if st.from.Type() == seal.File {
			// The other seals never keep the bootstrap credential in the data folder either.
			if err := removeDurably(filepath.Join(c.cfg.DataDir, "admin.json")); err != nil {
				c.log.Error("removing admin.json", "err", err)
			}
		}
	}
	clear(st.key)
	apply := func() {
		c.sealer = st.next
		c.cfg.Seal.Type = st.next.Type()
	}
	if locked {
		apply()
		return
	}
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		apply()
	}()
}

// dropStagedMemory forgets a staged key held in memory (the node is sealing).
func (c *Core) dropStagedMemory() {
	c.stageMu.Lock()
	defer c.stageMu.Unlock()
	if c.staged != nil {
		clear(c.staged.key)
		c.staged.key = nil
	}
}

// replaceRootKey runs both phases for a new root key and the seal configuration next. c.mu is
// held. The returned note names non-voters that did not stage it (they need the new seal
// material before their next start); an error means nothing was committed, or (in a cluster)
// that the outcome of the commit is unknown, which the error says.
func (c *Core) replaceRootKey(ctx context.Context, u *Serving, root []byte, next seal.Config) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := c.stageLocked(ctx, id, root, next); err != nil {
		return "", fmt.Errorf("staging the new root key on this node: %w", err)
	}
	node := c.node
	note := ""
	if node != nil {
		sealJSON, _ := json.Marshal(next)
		err := node.StageRootKey(ctx, cluster.RootKeyStage{ID: id, Key: root, Seal: sealJSON})
		var se *cluster.StageError
		switch {
		case err == nil:
		case errors.As(err, &se) && len(se.Voters) == 0:
			note = se.Error() + "give those members the new seal material before their next start"
			c.log.Warn("rekey: some non-voters did not stage the new root key", "err", err)
		default:
			node.DropRootKey(ctx, id)
			c.DropRootKey(id)
			return "", fmt.Errorf("nothing was changed: %w", err)
		}
	}
	if err := u.Keyring.Rekey(ctx, root, seal.SaveOp(next)); err != nil {
		if node == nil {
			c.DropRootKey(id)
			return "", err
		}
		// The entry may still commit (leadership lost mid-flight): the stages stay, they open
		// nothing unless it does.
		return "", fmt.Errorf("%w (the commit may still take effect; every member keeps the staged key for it; retry the rekey once the cluster has a leader)", err)
	}
	c.finishStage(id, true)
	if u.Erase != nil {
		u.Erase() // the keyring record sealed under the old root key is in freed pages now
	}
	return note, nil
}
