package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

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
//
// At start the check is deferred to each vault's first use (rollbackOf), so that opening a
// store of many vaults does not read every vault's tip (a random page read each, seconds for
// 10,000 vaults with a cold page cache): nothing reads a vault's record before its check.

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
			v.check = nil
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
			v.check = checkedVault(reasonVaultTip)
			_ = s.integrityError(ctx, "vault", v.Name, v.Name, reasonVaultTip) // logs it
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

const reasonVaultTip = "the vault record does not match its tip"

// vaultCheck is one cached record's rollback check: done, with the reason it failed ("" when
// it passed), or pending with what the deferred check needs.
type vaultCheck struct {
	done   atomic.Bool
	mu     sync.Mutex // serializes the deferred check
	reason string     // set before done
	key    string     // pending: the record's storage key
	sum    [32]byte   // pending: SHA-256 of the record as loaded
}

func checkedVault(reason string) *vaultCheck {
	c := &vaultCheck{reason: reason}
	c.done.Store(true)
	return c
}

// pendingCheck defers the check of a record loaded at start to its first use.
func pendingCheck(key string, raw []byte) *vaultCheck {
	return &vaultCheck{key: key, sum: sha256.Sum256(raw)}
}

// rollbackOf returns why v's record failed its rollback check ("" when it passed), running a
// deferred check once. An error (the store could not be read) is returned without deciding, so
// the next use checks again; callers refuse to use the vault meanwhile.
func (s *Service) rollbackOf(v *Vault) (string, error) {
	c := v.check
	if c == nil {
		return "", nil
	}
	if c.done.Load() {
		return c.reason, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done.Load() {
		return c.reason, nil
	}
	reason, err := s.deferredCheck(context.Background(), v, c)
	if err != nil {
		return "", err
	}
	c.reason = reason
	c.done.Store(true)
	return reason, nil
}

// deferredCheck compares a record loaded at start with its tip. When they differ and the
// record is still the one loaded, it was rolled back. When the record changed since, the write
// that changed it put a newer, checked record in the cache: this one is merely old.
func (s *Service) deferredCheck(ctx context.Context, v *Vault, c *vaultCheck) (string, error) {
	tip, err := s.st.Get(ctx, vaultTipKey(v))
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("reading %s: %w", vaultTipKey(v), err)
	}
	if v.Seq == 0 && !found || v.Seq > 0 && found && bytes.Equal(tip, v.Tip) {
		return "", nil
	}
	now, err := s.st.Get(ctx, c.key)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil // deleted since: the cache drops it
	}
	if err != nil {
		return "", fmt.Errorf("re-reading %s: %w", c.key, err)
	}
	if sha256.Sum256(now) != c.sum {
		return "", nil
	}
	_ = s.integrityError(ctx, "vault", v.Name, v.Name, reasonVaultTip) // logs it
	return reasonVaultTip, nil
}

// vaultIntegrity returns the error for a vault whose record failed its check, or nil.
func (s *Service) vaultIntegrity(v *Vault) error {
	if v == nil {
		return nil
	}
	reason, err := s.rollbackOf(v)
	if err != nil {
		return err
	}
	if reason == "" {
		return nil
	}
	return s.integrityError(context.Background(), "vault", v.Name, v.Name, reason)
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
