package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/strongroom/strongroom/internal/seal"
)

// rekey replaces the root key and re-seals the keyring under it, closing an erasure epoch (see
// docs/security-model.md): shamir gets new shares (the old ones stop working), file gets a new
// key file, pkcs11 gets a new root key wrapped by a new HSM key and the old HSM key is destroyed.
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
		if err := u.kr.Rekey(ctx, root, seal.SaveOp(sc)); err != nil {
			return nil, err
		}
		c.sealCfg = &sc
		c.unsealer = seal.NewUnsealer(threshold)
		c.log.Warn("root key replaced: the previous unseal shares no longer work", "shares", shares, "threshold", threshold)
		return map[string]any{"keys_base64": keys, "secret_shares": shares, "secret_threshold": threshold}, nil
	case "file":
		root := make([]byte, 32)
		if _, err := rand.Read(root); err != nil {
			return nil, err
		}
		defer clear(root)
		path := c.sealKeyFile()
		next := path + ".next"
		// The new key file is written first: if the process dies before the rename, start-up
		// finds it and tries it when the old key does not open the keyring.
		if err := os.WriteFile(next, []byte(hex.EncodeToString(root)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("writing new key file: %w", err)
		}
		if err := u.kr.Rekey(ctx, root, seal.SaveOp(sc)); err != nil {
			os.Remove(next)
			return nil, err
		}
		if err := os.Rename(next, path); err != nil {
			return nil, fmt.Errorf("replacing key file: %w", err)
		}
		c.log.Warn("root key replaced in the key file", "key_file", path)
		return map[string]any{"rekeyed": true, "type": "file"}, nil
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
		root := make([]byte, 32)
		if _, err := rand.Read(root); err != nil {
			return nil, err
		}
		defer clear(root)
		wrapped, err := h.wrap(newKey, root)
		if err != nil {
			return nil, err
		}
		sc.KeyLabel, sc.WrappedRootKey = label, wrapped
		if err := u.kr.Rekey(ctx, root, seal.SaveOp(sc)); err != nil {
			_ = h.ctx.DestroyObject(h.session, newKey)
			return nil, err
		}
		c.sealCfg = &sc
		if oldKey != 0 {
			if err := h.ctx.DestroyObject(h.session, oldKey); err != nil {
				c.log.Error("the new root key is in place but the old HSM key could not be destroyed; destroy it by hand", "err", err)
			}
		}
		return map[string]any{"rekeyed": true, "type": "pkcs11", "keyLabel": label}, nil
	}
	return nil, fmt.Errorf("rekeying the %s seal is not supported", sc.Type)
}
