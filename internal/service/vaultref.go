package service

import (
	"context"
	"strings"
)

// VaultRef is the vault a data-plane request addresses, looked up once when the request
// arrives (LookupVault) and passed to the secret operation, which reads no cache again. A vault
// that was not found, or failed its integrity check, carries that error: every operation
// returns it first, as its own lookup did. The secret operations are VaultRef's methods; the
// Service methods of the same names take a vault name and look it up for the caller.
type VaultRef struct {
	svc *Service
	v   *Vault
	err error
}

// LookupVault finds a live vault by name (no authorization: the operation it is passed to
// authorizes). The HTTP layer reads the vault's location and ARM id from it for response
// headers and audit records, also of requests that are then refused.
func (s *Service) LookupVault(name string) VaultRef {
	v, err := s.lookupVault(name)
	return VaultRef{svc: s, v: v, err: err}
}

// Found reports whether the vault exists and passed its integrity check.
func (r VaultRef) Found() bool { return r.err == nil }

// Location is the vault's region ("" when not found).
func (r VaultRef) Location() string {
	if r.err != nil {
		return ""
	}
	return r.v.Location
}

// ResourceID is the vault's ARM id in its own case, and AuditID upper-cased as audit records
// carry it (cached vaults have both ready; "" when not found).
func (r VaultRef) ResourceID() string {
	if r.err != nil {
		return ""
	}
	return r.svc.ResourceID(r.v)
}

// AuditID: see ResourceID.
func (r VaultRef) AuditID() string {
	switch {
	case r.err != nil:
		return ""
	case r.v.auditID == "": // not from the cache
		return strings.ToUpper(r.svc.ResourceID(r.v))
	}
	return r.v.auditID
}

// The secret operations by vault name, for callers that do not hold a VaultRef.

// SetSecret is LookupVault(vaultName).SetSecret.
func (s *Service) SetSecret(ctx context.Context, vaultName, name string, in SecretInput) (Secret, error) {
	return s.LookupVault(vaultName).SetSecret(ctx, name, in)
}

// GetSecret is LookupVault(vaultName).GetSecret.
func (s *Service) GetSecret(ctx context.Context, vaultName, name, version string) (Secret, error) {
	return s.LookupVault(vaultName).GetSecret(ctx, name, version)
}

// UpdateSecret is LookupVault(vaultName).UpdateSecret.
func (s *Service) UpdateSecret(ctx context.Context, vaultName, name, version string, up SecretUpdate) (Secret, error) {
	return s.LookupVault(vaultName).UpdateSecret(ctx, name, version, up)
}

// DeleteSecret is LookupVault(vaultName).DeleteSecret.
func (s *Service) DeleteSecret(ctx context.Context, vaultName, name string) (Secret, error) {
	return s.LookupVault(vaultName).DeleteSecret(ctx, name)
}

// GetDeletedSecret is LookupVault(vaultName).GetDeletedSecret.
func (s *Service) GetDeletedSecret(ctx context.Context, vaultName, name string) (Secret, error) {
	return s.LookupVault(vaultName).GetDeletedSecret(ctx, name)
}

// RecoverDeletedSecret is LookupVault(vaultName).RecoverDeletedSecret.
func (s *Service) RecoverDeletedSecret(ctx context.Context, vaultName, name string) (Secret, error) {
	return s.LookupVault(vaultName).RecoverDeletedSecret(ctx, name)
}

// PurgeDeletedSecret is LookupVault(vaultName).PurgeDeletedSecret.
func (s *Service) PurgeDeletedSecret(ctx context.Context, vaultName, name string) error {
	return s.LookupVault(vaultName).PurgeDeletedSecret(ctx, name)
}

// ListSecrets is LookupVault(vaultName).ListSecrets.
func (s *Service) ListSecrets(ctx context.Context, vaultName string, max int, skip string) (Page, error) {
	return s.LookupVault(vaultName).ListSecrets(ctx, max, skip)
}

// ListDeletedSecrets is LookupVault(vaultName).ListDeletedSecrets.
func (s *Service) ListDeletedSecrets(ctx context.Context, vaultName string, max int, skip string) (Page, error) {
	return s.LookupVault(vaultName).ListDeletedSecrets(ctx, max, skip)
}

// ListSecretVersions is LookupVault(vaultName).ListSecretVersions.
func (s *Service) ListSecretVersions(ctx context.Context, vaultName, name string, max int, skip string) (Page, error) {
	return s.LookupVault(vaultName).ListSecretVersions(ctx, name, max, skip)
}

// BackupSecret is LookupVault(vaultName).BackupSecret.
func (s *Service) BackupSecret(ctx context.Context, vaultName, name string) (string, error) {
	return s.LookupVault(vaultName).BackupSecret(ctx, name)
}

// RestoreSecret is LookupVault(vaultName).RestoreSecret.
func (s *Service) RestoreSecret(ctx context.Context, vaultName, blob string) (Secret, error) {
	return s.LookupVault(vaultName).RestoreSecret(ctx, blob)
}
