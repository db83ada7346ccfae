package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/service"
)

// Operator routes under /sys on the management origin. They take an ARM token and are
// authorized by the service's choke point (action "Strongroom/operator/...", scope "/").

func (a *armReq) keyringStatus(_ []string) {
	st, err := a.s.svc.KeyringStatus(a.ctx)
	a.ok(http.StatusOK, st, err)
}

func (a *armReq) keyringRotate(_ []string) {
	term, err := a.s.svc.RotateKeyring(a.ctx)
	a.ok(http.StatusOK, arm.ActiveTerm{ActiveTerm: term}, err)
}

func (a *armReq) keyringRewrap(_ []string) {
	var body arm.RewrapRequest
	if b, _ := io.ReadAll(a.r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil || body.Limit < 0 {
			a.fail(badParam("The body must be JSON {\"limit\": <non-negative integer>, \"background\": <bool>}."))
			return
		}
	}
	if body.Background {
		p, err := a.s.svc.StartRewrap(a.ctx)
		a.ok(http.StatusAccepted, p, err)
		return
	}
	p, err := a.s.svc.Rewrap(a.ctx, body.Limit)
	a.ok(http.StatusOK, p, err)
}

func (a *armReq) keyringRewrapStatus(_ []string) {
	job, err := a.s.svc.RewrapStatus(a.ctx)
	a.ok(http.StatusOK, job, err)
}

func (a *armReq) keyringRetire(_ []string) {
	gone, err := a.s.svc.RetireOldTerms(a.ctx)
	a.ok(http.StatusOK, arm.RetiredTerms{RetiredTerms: gone}, err)
}

func (a *armReq) backupKeyRotate(_ []string) {
	id, err := a.s.svc.RotateBackupKey(a.ctx)
	a.ok(http.StatusOK, arm.ActiveBackupKey{ActiveBackupKey: id}, err)
}

func (a *armReq) backupKeyRevoke(p []string) {
	id, err := strconv.ParseUint(p[0], 10, 32)
	if err != nil {
		a.fail(badParam("The backup key id must be a number."))
		return
	}
	if err := a.s.svc.RevokeBackupKey(a.ctx, uint32(id)); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusNoContent)
}

func (a *armReq) compact(_ []string) {
	if err := a.s.svc.Compact(a.ctx); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, arm.Compacted{Compacted: true})
}

func (a *armReq) seal(_ []string) {
	if a.s.cfg.Seal == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Sealing is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeSeal(a.ctx); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, arm.Sealed{Sealed: true})
	// Seal after this response has been audited and sent.
	go a.s.cfg.Seal()
}

func (a *armReq) rekey(_ []string) {
	var body arm.RekeyRequest
	if b, _ := io.ReadAll(a.r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			a.fail(badParam("The body must be JSON {\"secret_shares\": n, \"secret_threshold\": k}."))
			return
		}
	}
	if a.s.cfg.Rekey == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Rekeying is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeRekey(a.ctx); err != nil {
		a.fail(err)
		return
	}
	out, err := a.s.cfg.Rekey(a.ctx, body.Shares, body.Threshold)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "RekeyFailed", Message: err.Error()})
		return
	}
	writeJSON(a.w, http.StatusOK, out)
}

func (a *armReq) migrateSeal(_ []string) {
	var body arm.SealMigrateRequest
	if !a.decode(&body) {
		return
	}
	if a.s.cfg.MigrateSeal == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Seal migration is not available on this server."})
		return
	}
	if err := a.s.svc.AuthorizeRekey(a.ctx); err != nil {
		a.fail(err)
		return
	}
	out, err := a.s.cfg.MigrateSeal(a.ctx, body.To, body.Shares, body.Threshold)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "SealMigrationFailed", Message: err.Error()})
		return
	}
	writeJSON(a.w, http.StatusOK, out)
}

// identityAdmin is the identity service's operator surface (credential rotation and revocation).
// The server's Verifier is the identity service; a Verifier without it answers NotSupported.
type identityAdmin interface {
	CreateServicePrincipal(ctx context.Context, displayName string) (identity.Principal, string, error)
	DescribePrincipal(ctx context.Context, id string) (identity.PrincipalInfo, error)
	AddSecret(ctx context.Context, id string, replace bool) (identity.PrincipalInfo, identity.SecretInfo, string, error)
	RemoveSecret(ctx context.Context, id, keyID string) (identity.PrincipalInfo, error)
	SetDisabled(ctx context.Context, id string, disabled bool) (identity.PrincipalInfo, error)
	DeletePrincipal(ctx context.Context, id string) error
	RotateSigningKey(ctx context.Context) (identity.SigningKeyRotation, error)
}

// identityOp authorizes action and returns the identity service, or answers and returns nil.
func (a *armReq) identityOp(action string) identityAdmin {
	ids, ok := a.s.tokens.(identityAdmin)
	if !ok {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "NotSupported", Message: "Identity management is not available on this server."})
		return nil
	}
	if err := a.s.svc.AuthorizeIdentity(a.ctx, action); err != nil {
		a.fail(err)
		return nil
	}
	return ids
}

// identityError maps identity errors to Key Vault error envelopes; messages name ids only.
func identityError(err error) *service.Error {
	kind, code, msg := errInternal, "InternalServerError", "The server encountered an internal error; see the server log for the request id."
	switch {
	case errors.Is(err, identity.ErrPrincipalNotFound):
		kind, code, msg = service.ErrNotFound, "PrincipalNotFound", "No principal has that object id or app (client) id."
	case errors.Is(err, identity.ErrSecretNotFound):
		kind, code, msg = service.ErrNotFound, "SecretNotFound", "The principal has no client secret with that key id."
	case errors.Is(err, identity.ErrTooManySecrets):
		kind, code, msg = service.ErrConflict, "TooManySecrets", "The principal already has the most client secrets it may hold: remove one first, or rotate with replace."
	case errors.Is(err, identity.ErrManagedIdentitySecret):
		kind, code, msg = service.ErrBadRequest, "ManagedIdentitySecret", "A managed identity holds no client secret: its tokens come through an identity agent on a host it is assigned to."
	case errors.Is(err, identity.ErrProtectedPrincipal):
		kind, code, msg = service.ErrConflict, "ProtectedPrincipal", "The bootstrap admin cannot be disabled or deleted, and keeps at least one client secret."
	case errors.Is(err, identity.ErrBusy):
		kind, code, msg = service.ErrUnavailable, "ServiceUnavailable", "The server is too busy hashing secrets; retry later."
	}
	return &service.Error{Kind: kind, Code: code, Message: msg}
}

func (a *armReq) identityResult(status int, v any, err error) {
	if err != nil {
		a.failIdentity(err)
		return
	}
	writeJSON(a.w, status, v)
}

func (a *armReq) failIdentity(err error) {
	de := identityError(err)
	if errors.Is(de, errInternal) {
		a.s.log.Error("identity operation failed", "request_id", info(a.r).id, "err", err) // ids only, never secrets
	}
	a.fail(de)
}

// principalCreate makes a service principal (no role assignment yet) and returns its client
// secret once.
func (a *armReq) principalCreate(_ []string) {
	var body arm.PrincipalCreateRequest
	if !a.decode(&body) {
		return
	}
	if ids := a.identityOp("principals/write"); ids != nil {
		p, secret, err := ids.CreateServicePrincipal(a.ctx, body.DisplayName)
		if errors.Is(err, identity.ErrInvalidDisplayName) {
			a.fail(badParam("The displayName must be 1-256 bytes without control characters."))
			return
		}
		a.identityResult(http.StatusCreated, arm.PrincipalCreated{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID,
			DisplayName: p.DisplayName, ClientSecret: secret}, err)
	}
}

func (a *armReq) principalGet(p []string) {
	if ids := a.identityOp("principals/read"); ids != nil {
		in, err := ids.DescribePrincipal(a.ctx, p[0])
		a.identityResult(http.StatusOK, in, err)
	}
}

func (a *armReq) principalDisable(p []string) { a.setDisabled(p[0], true) }
func (a *armReq) principalEnable(p []string)  { a.setDisabled(p[0], false) }

func (a *armReq) setDisabled(id string, disabled bool) {
	if ids := a.identityOp("principals/write"); ids != nil {
		in, err := ids.SetDisabled(a.ctx, id, disabled)
		a.identityResult(http.StatusOK, in, err)
	}
}

func (a *armReq) principalDelete(p []string) {
	if ids := a.identityOp("principals/delete"); ids != nil {
		if err := ids.DeletePrincipal(a.ctx, p[0]); err != nil {
			a.failIdentity(err)
			return
		}
		a.w.WriteHeader(http.StatusNoContent)
	}
}

// principalSecretAdd is "rotate": a new client secret, returned once; {"replace": true} removes
// the others in the same write.
func (a *armReq) principalSecretAdd(p []string) {
	var body arm.SecretAddRequest
	if b, _ := io.ReadAll(a.r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			a.fail(badParam("The body must be JSON {\"replace\": <bool>}."))
			return
		}
	}
	if ids := a.identityOp("principals/secrets/write"); ids != nil {
		in, sec, secret, err := ids.AddSecret(a.ctx, p[0], body.Replace)
		a.identityResult(http.StatusOK, arm.SecretAdded[identity.PrincipalInfo]{Principal: in, KeyID: sec.KeyID, CreatedAt: sec.CreatedAt, ClientSecret: secret}, err)
	}
}

func (a *armReq) principalSecretRemove(p []string) {
	if ids := a.identityOp("principals/secrets/delete"); ids != nil {
		in, err := ids.RemoveSecret(a.ctx, p[0], p[1])
		a.identityResult(http.StatusOK, in, err)
	}
}

func (a *armReq) signingKeyRotate(_ []string) {
	if ids := a.identityOp("signingkeys/rotate/action"); ids != nil {
		out, err := ids.RotateSigningKey(a.ctx)
		a.identityResult(http.StatusOK, out, err)
	}
}
