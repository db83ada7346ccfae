package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/service"
)

// unsealed is everything that exists only while the root key is available.
type unsealed struct {
	handler http.Handler
	svc     *service.Service
	kr      *keyring.Keyring
	ids     *identity.Service
	stop    context.CancelFunc
	// erase asks for a compaction (after a purge, a rekey: freed pages held sealed records).
	erase func()
}

func (u *unsealed) close() { u.stop() }

// compactStore is the store capability purges use to erase freed pages.
type compactStore interface {
	Compact(ctx context.Context) error
}

// unsealWith builds the unsealed state from root. newSeal is non-nil when this call initializes
// the data folder (the seal configuration is recorded atomically with the keyring). It returns
// the bootstrap credential when it was created now.
func (c *core) unsealWith(ctx context.Context, root []byte, newSeal *seal.Config) error {
	_, err := c.unsealInit(ctx, root, newSeal, true)
	return err
}

func (c *core) unsealInit(ctx context.Context, root []byte, newSeal *seal.Config, activate bool) (*identity.Bootstrap, error) {
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
	ids, err := identity.New(ctx, c.st, kr, identity.Options{PublicURL: c.cfg.PublicURL, Erased: c.requestErasure})
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
	u, err := c.build(ctx, kr, ids)
	if err != nil {
		return nil, err
	}
	c.active.Store(u)
	c.log.Info("strongroom unsealed", "keyring_term", kr.Status().ActiveTerm)
	return shown, nil
}

// build makes the serving state (service, API handler, background jobs) from an unsealed keyring
// and identity service. The caller stores it in c.active.
// requestErasure asks the serving state for a compaction (identity deletions: a principal, a
// client secret, a dropped signing key).
func (c *core) requestErasure() {
	if u := c.active.Load(); u != nil && u.erase != nil {
		u.erase()
	}
}

func (c *core) build(ctx context.Context, kr *keyring.Keyring, ids *identity.Service) (*unsealed, error) {
	runCtx, stop := context.WithCancel(context.Background())
	compactNow := make(chan struct{}, 1)
	erase := func() {
		select {
		case compactNow <- struct{}{}:
		default:
		}
	}
	svc, err := service.New(ctx, c.st, kr, service.Options{
		SubscriptionID: ids.SubscriptionID(),
		TenantID:       ids.TenantID(),
		VaultURI: func(name string) string {
			return "https://" + strings.ToLower(name) + "." + c.cfg.DNSSuffix + portSuffix(c.cfg.Listen)
		},
		Assignments: []authz.Assignment{{ID: "bootstrap-admin-owner", PrincipalID: ids.AdminObjectID(), Role: authz.Owner, Scope: "/"}},
		Background:  runCtx,
		KeysApplied: ids.KeysApplied, // revocations and key rotations reach every node
		Erased:      erase,
		Log:         c.log.With("component", "service"),
	})
	if err != nil {
		stop()
		return nil, err
	}
	unbind := bindStore(c.st, svc, kr) // a cluster store keeps svc's caches current (storage.go)
	u := &unsealed{svc: svc, kr: kr, ids: ids, stop: func() { unbind(); stop() }, erase: erase}
	var storeFailure func() error
	if f, ok := c.st.(interface{ Failure() error }); ok { // the single-node store
		storeFailure = f.Failure
	}
	u.handler = httpapi.New(httpapi.Config{
		PublicURL: c.cfg.PublicURL, DNSSuffix: c.cfg.DNSSuffix, TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID(),
		VaultRequestsPer10s: c.cfg.VaultRequestsPer10s, Seal: c.seal, Rekey: c.rekey, MigrateSeal: c.migrate,
		StoreFailure: storeFailure,
	}, svc, ids, issuer.New(ids, c.cfg.PublicURL), c.auditLog(), c.log)
	go svc.RunPurger(runCtx, c.cfg.PurgeInterval, c.log)
	if cs, ok := c.st.(compactStore); ok {
		go c.runCompactor(runCtx, cs, compactNow)
	}
	return u, nil
}

// runCompactor erases freed pages soon after purges, coalescing bursts of purges into one pass.
func (c *core) runCompactor(ctx context.Context, cs compactStore, wake <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.CompactDelay):
		}
		_, replicated := cs.(*cluster.Store) // counted per node as each applies the request
		if err := cs.Compact(ctx); err != nil {
			if !replicated {
				c.metrics.CompactionFailure.Inc()
			}
			c.log.Error("compacting after purge", "err", err)
		} else {
			if !replicated {
				c.metrics.CompactionSuccess.Inc()
			}
			c.log.Info("compacted the store after purge")
		}
	}
}

// serveInit initializes a Shamir server: it makes the root key, splits it into shares, creates
// the keyring and the bootstrap admin, and returns both once. The server stays sealed. Every
// answer, a malformed body included, is audited before it is sent (answerSys).
func (c *core) serveInit(w http.ResponseWriter, r *http.Request) {
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
	resp := map[string]any{"keys_base64": shares, "secret_shares": req.Shares, "secret_threshold": req.Threshold}
	if len(req.AgeRecipients) > 0 {
		resp = map[string]any{"keys_age": shares, "secret_shares": req.Shares, "secret_threshold": req.Threshold}
	}
	if boot != nil {
		resp["admin"] = map[string]string{"tenantId": boot.TenantID, "subscriptionId": boot.SubscriptionID, "clientId": boot.ClientID, "clientSecret": boot.ClientSecret}
	}
	c.log.Info("strongroom initialized with the shamir seal; it stays sealed until unsealed", "shares", req.Shares, "threshold", req.Threshold)
	if !c.answerSys(w, r, "Init", 200, resp) {
		c.log.Error("the data folder was initialized but its shares were withheld because the answer could not be audited: remove the data folder and initialize again")
	}
}

// answerSys audits a seal operation's outcome, then sends body; when the record cannot be
// written it answers 503 instead (fail-closed) and returns false.
func (c *core) answerSys(w http.ResponseWriter, r *http.Request, op string, status int, body any) bool {
	if err := c.auditSys(r, op, status); err != nil {
		c.log.Error("auditing a seal operation failed: the answer is withheld", "op", op, "err", err)
		w.Header().Set("Retry-After", "5")
		c.writeJSON(w, http.StatusServiceUnavailable, errorBody("ServiceUnavailable", "The request could not be audited, so it was not answered; retry later."))
		return false
	}
	c.writeJSON(w, status, body)
	return true
}

func errorBody(code, msg string) azkv.Error {
	return azkv.NewError(code, msg, "")
}

// serveUnseal takes one share (Shamir) or re-runs an auto-unsealing seal.
func (c *core) serveUnseal(w http.ResponseWriter, r *http.Request) {
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
	c.answerSys(w, r, "Unseal", status, c.status())
}

func (c *core) unsealLocked(ctx context.Context, key string, reset bool) (int, string, string) {
	if !c.initialized {
		return 400, "BadParameter", "Strongroom is not initialized: run `strongroom operator init` first."
	}
	if !c.sealed() {
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
