// Soft delete and what follows it: delete, get-deleted, recover and purge.

package service

import (
	"context"
	"github.com/strongroom/strongroom/internal/authz"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// DeleteSecret soft-deletes every version of name (purges at once when soft delete is off).
func (r VaultRef) DeleteSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "delete", name)
	if err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		if !v.SoftDeleteOn() {
			out = s.secret(v, h.Name, h.Item, false, nil)
			return s.destroySecret(ctx, v, name, raw) // erased as a purge is (destroy.go)
		}
		hk := headKey(v, name)
		now := s.now()
		h.Deleted = &Deletion{DeletedDate: now.Unix(), ScheduledPurgeDate: now.Add(time.Duration(v.RetentionDays()) * 24 * time.Hour).Unix()}
		h.advance(now, true)
		ops, err := s.sealOps(ctx, v, []sealed{{hk, h}})
		if err != nil {
			return err
		}
		ops = append(ops, h.tipOp(v, name), putDue(secretDueKey(v, name, h.Deleted)), putDue(deletedKey(v, name))) // the indexes
		if err := s.apply(ctx, append([]store.Op{store.RequireEqual(hk, raw)}, ops...)); err != nil {
			return err
		}
		out = s.secret(v, h.Name, h.Item, false, h.Deleted)
		return nil
	})
	return out, err
}

// deletedHead returns the head of a soft-deleted secret or the "Deleted Secret not found" error.
func (s *Service) deletedHead(ctx context.Context, v *Vault, name string) (secretHead, []byte, error) {
	h, raw, found, err := s.head(ctx, v, name)
	if err != nil {
		return h, nil, err
	}
	if !found || h.Deleted == nil {
		return h, nil, newErr(ErrNotFound, "SecretNotFound", "", "%s%s", deletedSecretPrefix, name)
	}
	return h, raw, nil
}

// GetDeletedSecret returns a soft-deleted secret's latest version, without its value.
func (r VaultRef) GetDeletedSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	// RBAC reads it as metadata; an access policy needs "get" for it, as Key Vault documents.
	v, err := s.secretOpAs(ctx, r, "readMetadata/action", authz.PermGet, name)
	if err != nil {
		return Secret{}, err
	}
	h, _, err := s.deletedHead(ctx, v, name)
	if err != nil {
		return Secret{}, err
	}
	return s.secret(v, h.Name, h.Item, false, h.Deleted), nil
}

// RecoverDeletedSecret undeletes a soft-deleted secret.
func (r VaultRef) RecoverDeletedSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "recover/action", name)
	if err != nil {
		return Secret{}, err
	}
	var out Secret
	err = retry(func() error {
		h, raw, err := s.deletedHead(ctx, v, name)
		if err != nil {
			return err
		}
		if err := s.enforceSecret(ctx, v, h.Name, &h.Item); err != nil {
			return err
		}
		due := secretDueKey(v, name, h.Deleted)
		h.Deleted = nil
		h.advance(s.now(), true)
		hk := headKey(v, name)
		ops, err := s.sealOps(ctx, v, []sealed{{hk, h}})
		if err != nil {
			return err
		}
		ops = append(ops, h.tipOp(v, name), dropDue(due), dropDue(deletedKey(v, name)))
		ops = append(ops, s.rotationNudgeOps(ctx, v, h.Name)...) // its policy's schedule resumes
		if err := s.apply(ctx, append([]store.Op{store.RequireEqual(hk, raw)}, ops...)); err != nil {
			return err
		}
		out = s.secret(v, h.Name, h.Item, false, nil)
		return nil
	})
	return out, err
}

// PurgeDeletedSecret destroys a soft-deleted secret now, unless the vault forbids it.
func (r VaultRef) PurgeDeletedSecret(ctx context.Context, name string) error {
	s := r.svc
	v, err := s.secretOp(ctx, r, "purge/action", name)
	if err != nil {
		return err
	}
	if v.PurgeProtected() {
		return newErr(ErrForbidden, "Forbidden", "", "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: %s;location=%s", v.Name, v.Location)
	}
	return retry(func() error {
		h, raw, err := s.deletedHead(ctx, v, name)
		if err != nil {
			return err
		}
		return s.destroySecret(ctx, v, name, raw, dropDue(secretDueKey(v, name, h.Deleted)))
	})
}
