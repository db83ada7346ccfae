package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Rollback detection for vault records, as for secret heads (integrity.go): every write of a
// vault's record (arm/vault/<name>) also writes its tip, 16 random bytes at v/<id>/}, and the
// record holds the same bytes. A vault record put back alone (one without purge protection,
// with soft delete off, not yet deleted, or with older access policies) names an older tip. The
// check runs where records enter the cache (New, KeysApplied); a vault that fails it stays in
// the cache, so its name stays taken, but every operation on it and every listing that would
// show it answers ErrIntegrity, and the purger skips it.

func vaultTipKey(v *Vault) string { return "v/" + v.ID + "/" + tipSuffix }

// checkVault checks v, opened from raw at key, against its tip and marks it when they differ.
func (s *Service) checkVault(ctx context.Context, key string, raw []byte, v *Vault) error {
	for range 8 {
		tip, err := s.st.Get(ctx, vaultTipKey(v))
		found := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("reading %s: %w", vaultTipKey(v), err)
		}
		if v.Seq == 0 && !found || v.Seq > 0 && found && bytes.Equal(tip, v.Tip) {
			v.rolledBack = ""
			return nil
		}
		now, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile: the caller's next reload drops it
		}
		if err != nil {
			return fmt.Errorf("re-reading %s: %w", key, err)
		}
		if bytes.Equal(now, raw) {
			v.rolledBack = "the vault record does not match its tip"
			_ = s.integrityError(ctx, "vault", v.Name, v.Name, v.rolledBack) // logs it
			return nil
		}
		// A write landed between the reads (another node's, applied here): check the new one.
		var nv Vault
		if err := s.open(ctx, keyring.SystemKeyID, key, now, &nv); err != nil {
			return err
		}
		nv.resourceID, nv.auditID = v.resourceID, v.auditID
		*v, raw = nv, now
	}
	return fmt.Errorf("vault record %s keeps changing", key)
}

// vaultIntegrity returns the error for a vault whose record failed its check, or nil.
func (s *Service) vaultIntegrity(v *Vault) error {
	if v == nil || v.rolledBack == "" {
		return nil
	}
	return s.integrityError(context.Background(), "vault", v.Name, v.Name, v.rolledBack)
}

// anyRolledBack returns the integrity error of the first marked vault in vs.
func (s *Service) anyRolledBack(vs []*Vault) error {
	for _, v := range vs {
		if err := s.vaultIntegrity(v); err != nil {
			return err
		}
	}
	return nil
}
