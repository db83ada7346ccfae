package sysapi

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/seal"
)

// Rekey replaces the root key and re-seals the keyring under it, closing an erasure epoch (see
// docs/security-model.md): shamir gets new shares (the old ones stop working), file gets a new
// key file, pkcs11 gets a new root key wrapped by a new HSM key and the old HSM key is destroyed.
// In a cluster every member stages the new key before the commit (rootkey.go).
func (c *Core) Rekey(ctx context.Context, shares, threshold int) (*arm.RekeyResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.active.Load()
	if u == nil || !c.initialized {
		return nil, fmt.Errorf("the server is sealed")
	}
	ch, err := c.sealer.Replace(ctx, seal.Params{Shares: shares, Threshold: threshold})
	if err != nil {
		return nil, err
	}
	defer clear(ch.Root)
	note, err := c.commitChange(ctx, u, ch)
	if err != nil {
		return nil, err
	}
	c.log.Warn("root key replaced: "+ch.Note, "seal", ch.Config.Type, "shares", ch.Config.Shares, "threshold", ch.Config.Threshold)
	if ch.Shares != nil {
		return &arm.RekeyResult{KeysBase64: ch.Shares, Shares: ch.Config.Shares, Threshold: ch.Config.Threshold, Warning: note}, nil
	}
	return &arm.RekeyResult{Rekeyed: true, Type: string(ch.Config.Type), KeyLabel: ch.Config.KeyLabel, Warning: note}, nil
}

// commitChange runs both phases for ch (replaceRootKey) and then finishes it with the outcome:
// in a cluster a failed commit may still land, so the seal keeps what it made for it.
func (c *Core) commitChange(ctx context.Context, u *Serving, ch *seal.Change) (string, error) {
	note, err := c.replaceRootKey(ctx, u, ch.Root, ch.Config)
	outcome := seal.Committed
	if err != nil {
		outcome = seal.NotCommitted
		if c.node != nil {
			outcome = seal.Unknown
		}
	}
	if ferr := ch.Finish(outcome); ferr != nil {
		c.log.Error("finishing the root key change", "err", ferr)
	}
	return note, err
}

// Migrate moves the data folder to another seal type in one atomic write: a new root key, the
// keyring re-sealed under it and the new seal configuration recorded together (staged on every
// member first, as for rekey). Until that write the old seal unseals as before; after it, only
// the new one does, and every node's config file must name the new type before its next start.
func (c *Core) Migrate(ctx context.Context, to string, shares, threshold int) (*arm.SealMigrateResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.active.Load()
	if u == nil || !c.initialized {
		return nil, fmt.Errorf("the server is sealed")
	}
	from := c.sealer.Type()
	if seal.Type(to) == from {
		return nil, fmt.Errorf("the data folder already uses the %s seal (use rekey to replace its root key)", to)
	}
	sc := c.cfg.Seal
	sc.Type = seal.Type(to)
	target, err := seal.New(sc, c.cfg.DataDir, nil, c.log)
	if err != nil {
		return nil, fmt.Errorf("migrating to %s: %w", to, err)
	}
	ch, err := target.Replace(ctx, seal.Params{Shares: shares, Threshold: threshold})
	if err != nil {
		return nil, err
	}
	defer clear(ch.Root)
	out := &arm.SealMigrateResult{From: string(from), To: to}
	if ch.Shares != nil {
		out.KeysBase64, out.Shares, out.Threshold = ch.Shares, ch.Config.Shares, ch.Config.Threshold
	}
	admin, _ := readAdminFile(filepath.Join(c.cfg.DataDir, "admin.json"))
	note, err := c.commitChange(ctx, u, ch)
	if err != nil {
		return nil, err
	}
	if admin != nil && sc.Type != seal.File {
		// finishStage removed it: the caller gets it once so it is not lost.
		out.Admin = &arm.AdminCredential{TenantID: admin.TenantID, SubscriptionID: admin.SubscriptionID, ClientID: admin.ClientID, ClientSecret: admin.ClientSecret}
		out.AdminFileRemoved = "admin.json was removed from the data folder of every member: keep this credential outside it"
	}
	out.Next = "set seal.type: " + to + " in the config file of every server before its next start"
	out.Warning = note
	c.log.Warn("seal migrated; update seal.type in the config before the next start", "from", from, "to", to)
	return out, nil
}
