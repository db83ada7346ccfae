package service_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/policy"
	"github.com/strongroom/strongroom/internal/service"
)

const expiryBuiltIn = "/providers/Microsoft.Authorization/policyDefinitions/98728c90-32c7-4049-8429-847dc0f4fe37"

func isPolicyDenial(err error) bool {
	var e *service.Error
	return errors.As(err, &e) && errors.Is(err, service.ErrForbidden) && e.Inner == "RequestDisallowedByPolicy"
}

// A Deny refuses every write path of a non-compliant version (set, update, restore, recover),
// an exemption lifts it until expiresOn by the injected clock, and DoNotEnforce never denies.
func TestPolicy_DenyOnEveryWritePathAndExemptionExpiry(t *testing.T) {
	svc, clk, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-pol", 7, false)
	ref := svc.LookupVault("kv-pol")
	v := "x"
	exp := clk.Now().Add(24 * time.Hour).Unix()
	// Before any assignment: a secret without exp, deleted (to recover later), and a backup.
	if _, err := svc.SetSecret(ctx, "kv-pol", "old", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	blob, err := ref.BackupSecret(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(ctx, "kv-pol", "gone", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.DeleteSecret(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	vaultScope := svc.LookupVault("kv-pol").ResourceID()
	a, _, err := svc.PutPolicyAssignment(ctx, vaultScope, "deny-no-exp", service.PolicyAssignmentInput{PolicyDefinitionID: expiryBuiltIn,
		Parameters: map[string]policy.ParamValue{"effect": {Value: "Deny"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(ctx, "kv-pol", "new", service.SecretInput{Value: &v}); !isPolicyDenial(err) {
		t.Fatalf("set without exp: %v", err)
	}
	if _, err := svc.SetSecret(ctx, "kv-pol", "new", service.SecretInput{Value: &v, Expires: &exp}); err != nil {
		t.Fatalf("set with exp: %v", err)
	}
	ct := "text/plain"
	if _, err := ref.UpdateSecret(ctx, "old", "", service.SecretUpdate{ContentType: &ct}); !isPolicyDenial(err) {
		t.Fatalf("update of a version without exp: %v", err)
	}
	if _, err := ref.DeleteSecret(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if err := ref.PurgeDeletedSecret(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.RestoreSecret(ctx, blob); !isPolicyDenial(err) {
		t.Fatalf("restore of a version without exp: %v", err)
	}
	if _, err := ref.RecoverDeletedSecret(ctx, "gone"); !isPolicyDenial(err) {
		t.Fatalf("recover of a version without exp: %v", err)
	}

	// An exemption at the vault, for an hour of the injected clock.
	until := clk.Now().Add(time.Hour)
	if _, _, err := svc.PutPolicyExemption(ctx, vaultScope, "waive", service.PolicyExemptionInput{PolicyAssignmentID: a.ID(),
		ExemptionCategory: "waiver", ExpiresOn: &until}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(ctx, "kv-pol", "exempt", service.SecretInput{Value: &v}); err != nil {
		t.Fatalf("set while exempt: %v", err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := svc.SetSecret(ctx, "kv-pol", "exempt", service.SecretInput{Value: &v}); !isPolicyDenial(err) {
		t.Fatalf("set after the exemption expired: %v", err)
	}

	// DoNotEnforce evaluates but never denies.
	if _, _, err := svc.PutPolicyAssignment(ctx, vaultScope, "deny-no-exp", service.PolicyAssignmentInput{PolicyDefinitionID: expiryBuiltIn,
		Parameters: map[string]policy.ParamValue{"effect": {Value: "Deny"}}, EnforcementMode: "DoNotEnforce"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(ctx, "kv-pol", "relaxed", service.SecretInput{Value: &v}); err != nil {
		t.Fatalf("set under DoNotEnforce: %v", err)
	}
	if _, _, err := svc.PutPolicyAssignment(ctx, vaultScope, "bad", service.PolicyAssignmentInput{PolicyDefinitionID: expiryBuiltIn,
		Parameters: map[string]policy.ParamValue{"effect": {Value: "Block"}}}); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("an effect the definition does not allow: %v", err)
	}
}
