package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/seal"
)

// rekey replaces the root key and re-seals the keyring under it, closing an erasure epoch (see
// docs/security-model.md): shamir gets new shares (the old ones stop working), file gets a new
// key file, pkcs11 gets a new root key wrapped by a new HSM key and the old HSM key is destroyed.
// In a cluster every member stages the new key before the commit (rootkey.go).
func (c *core) rekey(ctx context.Context, shares, threshold int) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.active.Load()
	if u == nil || c.sealCfg == nil {
		return nil, fmt.Errorf("the server is sealed")
	}
	sc := *c.sealCfg
	switch sc.Type {
	case "shamir":
		if shares == 0 {
			shares, threshold = sc.Shares, sc.Threshold
		}
		root, keys, err := seal.SplitRootKey(shares, threshold)
		if err != nil {
			return nil, err
		}
		defer clear(root)
		sc.Shares, sc.Threshold = shares, threshold
		note, err := c.replaceRootKey(ctx, u, root, sc)
		if err != nil {
			return nil, err
		}
		c.log.Warn("root key replaced: the previous unseal shares no longer work", "shares", shares, "threshold", threshold)
		return withNote(map[string]any{"keys_base64": keys, "secret_shares": shares, "secret_threshold": threshold}, note), nil
	case "file":
		root, err := newRootKey()
		if err != nil {
			return nil, err
		}
		defer clear(root)
		note, err := c.replaceRootKey(ctx, u, root, sc)
		if err != nil {
			return nil, err
		}
		c.log.Warn("root key replaced in the key file", "key_file", c.sealKeyFile())
		return withNote(map[string]any{"rekeyed": true, "type": "file"}, note), nil
	case "pkcs11":
		h, err := openHSM(c.cfg.Seal.PKCS11)
		if err != nil {
			return nil, err
		}
		defer h.close()
		oldKey, err := h.findKey(sc.KeyLabel)
		if err != nil {
			return nil, err
		}
		label := fmt.Sprintf("%s-%d", c.cfg.Seal.PKCS11.KeyLabel, time.Now().Unix())
		newKey, err := h.generateKey(label)
		if err != nil {
			return nil, err
		}
		root, err := newRootKey()
		if err != nil {
			return nil, err
		}
		defer clear(root)
		wrapped, err := h.wrap(newKey, root)
		if err != nil {
			return nil, err
		}
		sc.KeyLabel, sc.WrappedRootKey = label, wrapped
		note, err := c.replaceRootKey(ctx, u, root, sc)
		if err != nil {
			if clusterNode(c.st) == nil { // in a cluster the commit may still land: keep the key
				_ = h.ctx.DestroyObject(h.session, newKey)
			}
			return nil, err
		}
		if oldKey != 0 {
			if err := h.ctx.DestroyObject(h.session, oldKey); err != nil {
				c.log.Error("the new root key is in place but the old HSM key could not be destroyed; destroy it by hand", "err", err)
			}
		}
		return withNote(map[string]any{"rekeyed": true, "type": "pkcs11", "keyLabel": label}, note), nil
	}
	return nil, fmt.Errorf("rekeying the %s seal is not supported", sc.Type)
}

func newRootKey() ([]byte, error) {
	root := make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		return nil, fmt.Errorf("generating root key: %w", err)
	}
	return root, nil
}

func withNote(out map[string]any, note string) map[string]any {
	if note != "" {
		out["warning"] = note
	}
	return out
}

// migrate moves the data folder to another seal type in one atomic write: a new root key, the
// keyring re-sealed under it and the new seal configuration recorded together (staged on every
// member first, as for rekey). Until that write the old seal unseals as before; after it, only
// the new one does, and every node's config file must name the new type before its next start.
func (c *core) migrate(ctx context.Context, to string, shares, threshold int) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.active.Load()
	if u == nil || c.sealCfg == nil {
		return nil, fmt.Errorf("the server is sealed")
	}
	from := c.sealCfg.Type
	if to == from {
		return nil, fmt.Errorf("the data folder already uses the %s seal (use rekey to replace its root key)", to)
	}
	var (
		root []byte
		next seal.Config
		out  = map[string]any{"from": from, "to": to}
		err  error
	)
	switch to {
	case "shamir":
		var keys []string
		if root, keys, err = seal.SplitRootKey(shares, threshold); err != nil {
			return nil, err
		}
		next = seal.Config{Type: "shamir", Shares: shares, Threshold: threshold}
		out["keys_base64"], out["secret_shares"], out["secret_threshold"] = keys, shares, threshold
	case "file":
		if root, err = newRootKey(); err != nil {
			return nil, err
		}
		next = seal.Config{Type: "file"}
	case "pkcs11":
		p := c.cfg.Seal.PKCS11
		if p.Module == "" || p.TokenLabel == "" || (p.PINEnv == "") == (p.PINFile == "") {
			return nil, fmt.Errorf("migrating to pkcs11 needs seal.pkcs11 (module, token_label, and pin_env or pin_file) in the server's config")
		}
		if p.KeyLabel == "" {
			c.cfg.Seal.PKCS11.KeyLabel = "strongroom-root-wrap"
		}
		if root, next, err = newPKCS11RootKey(ctx, c.cfg.Seal); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown seal type %q (want file, shamir or pkcs11)", to)
	}
	defer clear(root)
	admin, _ := readAdminFile(filepath.Join(c.cfg.DataDir, "admin.json"))
	note, err := c.replaceRootKey(ctx, u, root, next)
	if err != nil {
		return nil, err
	}
	if admin != nil && to != "file" {
		// finishStage removed it: the caller gets it once so it is not lost.
		out["admin"] = admin
		out["adminFileRemoved"] = "admin.json was removed from the data folder of every member: keep this credential outside it"
	}
	out["next"] = "set seal.type: " + to + " in the config file of every server before its next start"
	c.log.Warn("seal migrated; update seal.type in the config before the next start", "from", from, "to", to)
	return withNote(out, note), nil
}
