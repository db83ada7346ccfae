package service_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/service"
)

// A VaultRef is looked up once and used by the operation it is passed to: a found vault names
// its location and ARM id, and an operation through it acts on that vault; a vault that was not
// found names nothing and answers VaultNotFound from every operation.
func TestVaultRef(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-ref", 7, false)
	ref := svc.LookupVault("KV-Ref")
	wantID := svc.SubscriptionScope() + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-ref"
	if !ref.Found() || ref.Location() != "eastus" || ref.ResourceID() != wantID || ref.AuditID() != strings.ToUpper(wantID) {
		t.Fatalf("found ref: %v %q %q %q", ref.Found(), ref.Location(), ref.ResourceID(), ref.AuditID())
	}
	v := "value"
	if _, err := ref.SetSecret(ctx, "s", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.GetSecret(ctx, "kv-ref", "s", ""); err != nil || got.Value != v {
		t.Fatalf("a secret set through the ref, read by name: %+v %v", got, err)
	}

	missing := svc.LookupVault("kv-none")
	if missing.Found() || missing.Location() != "" || missing.ResourceID() != "" || missing.AuditID() != "" {
		t.Fatalf("missing ref: %v %q %q %q", missing.Found(), missing.Location(), missing.ResourceID(), missing.AuditID())
	}
	calls := map[string]func() error{
		"SetSecret":  func() error { _, err := missing.SetSecret(ctx, "s", service.SecretInput{Value: &v}); return err },
		"GetSecret":  func() error { _, err := missing.GetSecret(ctx, "s", ""); return err },
		"List":       func() error { _, err := missing.ListSecrets(ctx, 1, ""); return err },
		"Backup":     func() error { _, err := missing.BackupSecret(ctx, "s"); return err },
		"Purge":      func() error { return missing.PurgeDeletedSecret(ctx, "s") },
		"ListDelete": func() error { _, err := missing.ListDeletedSecrets(ctx, 1, ""); return err },
		"GetPolicy":  func() error { _, err := missing.GetRotationPolicy(ctx, "s"); return err },
		"SetPolicy":  func() error { _, err := missing.SetRotationPolicy(ctx, "s", rotation.Policy{}); return err },
		"Rotate":     func() error { _, err := missing.RotateSecret(ctx, "s"); return err },
		"Status":     func() error { _, err := missing.RotationStatus(ctx, "s"); return err },
	}
	for name, call := range calls {
		var e *service.Error
		if err := call(); !errors.As(err, &e) || e.Code != "VaultNotFound" {
			t.Errorf("%s on a missing vault: %v, want VaultNotFound", name, err)
		}
	}
}
