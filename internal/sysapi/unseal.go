package sysapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/seal"
)

// unsealWith builds the unsealed state from root. newSeal is non-nil when this call initializes
// the data folder (the seal configuration is recorded atomically with the keyring). It returns
// the bootstrap credential when it was created now.
func (c *Core) unsealWith(ctx context.Context, root []byte, newSeal *seal.Config) error {
	_, err := c.unsealInit(ctx, root, newSeal, true)
	return err
}

func (c *Core) unsealInit(ctx context.Context, root []byte, newSeal *seal.Config, activate bool) (*identity.Bootstrap, error) {
	defer clear(root)
	var kr *keyring.Keyring
	var err error
	if newSeal != nil {
		kr, err = keyring.Open(ctx, c.st, root, seal.SaveOp(*newSeal))
	} else {
		kr, err = keyring.Load(ctx, c.st, root)
	}
	if err != nil {
		return nil, err
	}
	kr.SetStagedRoot(c.stagedRootKey) // a cluster rekey's new key, before its commit arrives
	if newSeal != nil {
		if c.sealer, err = seal.New(c.cfg.Seal, c.cfg.DataDir, newSeal, c.log); err != nil {
			return nil, err
		}
		c.initialized = true
	}
	ids, err := identity.New(ctx, c.st, kr, identity.Options{PublicURL: c.cfg.PublicURL, DNSSuffix: c.cfg.DNSSuffix, Erased: c.requestErasure})
	if err != nil {
		return nil, fmt.Errorf("starting identity service: %w", err)
	}
	boot, created, err := ids.EnsureBootstrap(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating bootstrap admin: %w", err)
	}
	var shown *identity.Bootstrap
	if created {
		shown = &boot
		if err := c.showBootstrap(boot); err != nil {
			return nil, err
		}
	}
	if !activate {
		return shown, nil
	}
	u, err := c.serve(ctx, Unsealed{Keyring: kr, Identities: ids})
	if err != nil {
		return nil, err
	}
	c.active.Store(u)
	c.log.Info("strongroom unsealed", "keyring_term", kr.Status().ActiveTerm)
	return shown, nil
}

// serve builds the serving state on u (Options.Build).
func (c *Core) serve(ctx context.Context, u Unsealed) (*Serving, error) {
	s, err := c.build(ctx, u)
	if err != nil {
		return nil, err
	}
	s.Unsealed = u
	return s, nil
}

// requestErasure asks the serving state for a compaction (identity deletions: a principal, a
// client secret, a dropped signing key).
func (c *Core) requestErasure() {
	if u := c.active.Load(); u != nil && u.Erase != nil {
		u.Erase()
	}
}

// serveInit initializes a Shamir server: it makes the root key, splits it into shares, creates
// the keyring and the bootstrap admin, and returns both once. The server stays sealed. Every
// answer, a malformed body included, is audited before it is sent (answerSys).
func (c *Core) serveInit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Shares        int      `json:"secret_shares"`
		Threshold     int      `json:"secret_threshold"`
		AgeRecipients []string `json:"age_recipients"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err := json.Unmarshal(body, &req); err != nil {
		c.answerSys(w, r, "Init", 400, errorBody("BadParameter", "The request body must be JSON with secret_shares and secret_threshold."))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealer.Type() != seal.Shamir {
		c.answerSys(w, r, "Init", 400, errorBody("BadParameter", "Only a server configured with the shamir seal is initialized by operators; this one uses the "+string(c.sealer.Type())+" seal."))
		return
	}
	if c.initialized {
		c.answerSys(w, r, "Init", 409, errorBody("Conflict", "Strongroom is already initialized."))
		return
	}
	if !c.audit.Healthy() {
		// Shares made now could not be handed out: refuse before anything is stored.
		c.answerSys(w, r, "Init", 503, errorBody("ServiceUnavailable", "The audit log is unavailable; nothing was initialized."))
		return
	}
	ch, err := c.sealer.Init(r.Context(), seal.Params{Shares: req.Shares, Threshold: req.Threshold})
	var shares []string
	if err == nil {
		shares = ch.Shares
		if len(req.AgeRecipients) > 0 {
			// Encrypt before anything is stored, so a bad recipient leaves the server uninitialized.
			shares, err = seal.EncryptShares(shares, req.AgeRecipients)
			if err != nil {
				clear(ch.Root)
			}
		}
	}
	if err != nil {
		c.answerSys(w, r, "Init", 400, errorBody("BadParameter", err.Error()))
		return
	}
	boot, err := c.unsealInit(r.Context(), ch.Root, &ch.Config, false)
	if err != nil {
		c.log.Error("initializing", "err", err)
		c.answerSys(w, r, "Init", 500, errorBody("InternalServerError", "Initialization failed; see the server log."))
		return
	}
	resp := arm.InitResult{KeysBase64: shares, Shares: req.Shares, Threshold: req.Threshold}
	if len(req.AgeRecipients) > 0 {
		resp.KeysBase64, resp.KeysAge = nil, shares
	}
	if boot != nil {
		resp.Admin = &arm.AdminCredential{TenantID: boot.TenantID, SubscriptionID: boot.SubscriptionID, ClientID: boot.ClientID, ClientSecret: boot.ClientSecret}
	}
	c.log.Info("strongroom initialized with the shamir seal; it stays sealed until unsealed", "shares", req.Shares, "threshold", req.Threshold)
	if !c.answerSys(w, r, "Init", 200, resp) {
		c.log.Error("the data folder was initialized but its shares were withheld because the answer could not be audited: remove the data folder and initialize again")
	}
}

// answerSys audits a seal operation's outcome, then sends body; when the record cannot be
// written it answers 503 instead (fail-closed) and returns false.
func (c *Core) answerSys(w http.ResponseWriter, r *http.Request, op string, status int, body any) bool {
	if err := c.auditSys(r, op, status); err != nil {
		c.log.Error("auditing a seal operation failed: the answer is withheld", "op", op, "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorBody("ServiceUnavailable", "The request could not be audited, so it was not answered; retry later."))
		return false
	}
	writeJSON(w, status, body)
	return true
}

func errorBody(code, msg string) azkv.Error {
	return azkv.NewError(code, msg, "")
}

// serveUnseal takes one share (Shamir) or re-runs an auto-unsealing seal.
func (c *Core) serveUnseal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key   string `json:"key"`
		Reset bool   `json:"reset"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if len(body) > 0 && json.Unmarshal(body, &req) != nil {
		c.answerSys(w, r, "Unseal", 400, errorBody("BadParameter", "The request body must be JSON: {\"key\": \"<share>\"}."))
		return
	}
	c.mu.Lock()
	status, code, msg := c.unsealLocked(r.Context(), req.Key, req.Reset)
	c.mu.Unlock()
	if status >= 400 {
		c.answerSys(w, r, "Unseal", status, errorBody(code, msg))
		return
	}
	c.answerSys(w, r, "Unseal", status, c.Status())
}

func (c *Core) unsealLocked(ctx context.Context, key string, reset bool) (int, string, string) {
	if !c.initialized {
		return 400, "BadParameter", "Strongroom is not initialized: run `strongroom operator init` first."
	}
	if !c.Sealed() {
		return 200, "", ""
	}
	shares, byShares := c.sealer.(seal.Shares)
	if !byShares {
		root, err := c.sealer.Unseal(ctx, c.opensKeyring(ctx))
		if err == nil {
			err = c.unsealWith(ctx, root, nil)
		}
		if err != nil {
			// The detail (HSM and PKCS#11 messages, file paths) stays in the server log.
			t := string(c.sealer.Type())
			c.log.Error("unsealing", "seal", t, "err", err)
			return 503, "ServiceUnavailable", "The " + t + " seal could not release the root key; the server log says why. Fix the cause and retry."
		}
		return 200, "", ""
	}
	if reset {
		shares.Reset()
		return 200, "", ""
	}
	root, err := shares.Add(key)
	if err != nil {
		if !errors.Is(err, seal.ErrBadShare) {
			c.log.Error("unsealing", "err", err)
			err = seal.ErrBadShare
		}
		return 400, "BadParameter", "The unseal share was rejected: " + err.Error() + "."
	}
	if root == nil {
		return 200, "", ""
	}
	if err := c.unsealWith(ctx, root, nil); err != nil {
		if errors.Is(err, keyring.ErrWrongRootKey) {
			return 400, "BadParameter", "The shares entered do not combine to this server's root key; progress was reset. Enter the threshold of correct shares again."
		}
		c.log.Error("unsealing", "err", err)
		return 500, "InternalServerError", "Unsealing failed; see the server log."
	}
	return 200, "", ""
}

// Reload rebuilds the serving state (keyring, identities, and what Options.Build makes) from the
// store after its whole content was replaced by a snapshot restore, without sealing: the keyring
// is re-read under the root key this server already holds. A sealed server has nothing to reload
// (its next unseal reads the restored store).
func (c *Core) Reload(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.active.Load()
	if old == nil {
		return nil
	}
	if err := old.Keyring.Reload(ctx); err != nil {
		return fmt.Errorf("reloading the keyring: %w", err)
	}
	ids, err := identity.New(ctx, c.st, old.Keyring, identity.Options{PublicURL: c.cfg.PublicURL, DNSSuffix: c.cfg.DNSSuffix, Erased: c.requestErasure})
	if err != nil {
		return fmt.Errorf("reloading identities: %w", err)
	}
	u, err := c.serve(ctx, Unsealed{Keyring: old.Keyring, Identities: ids})
	if err != nil {
		return err
	}
	if !c.active.CompareAndSwap(old, u) {
		u.Close()
		return nil
	}
	old.Close()
	c.log.Info("serving state reloaded from the restored store", "tenant_id", ids.TenantID())
	return nil
}
