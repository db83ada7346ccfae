package httpapi

import (
	"net/http"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/service"
)

// accessPolicyRoutes serve a vault's access policies (PUT .../vaults/{v}/accessPolicies/{kind}).
var accessPolicyRoutes = []armRoute{
	route("PUT", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}/accesspolicies/{}", "VaultPatch", (*armReq).updateAccessPolicies),
}

// updateAccessPolicies adds, replaces or removes access-policy entries (Vaults_UpdateAccessPolicy).
// The answer lists the vault's policies as the update left them. Key Vault audits the change
// as a VaultPatch.
func (a *armReq) updateAccessPolicies(p []string) {
	rg, name, kind := p[0], p[1], p[2]
	a.setVaultScope(rg, name)
	var body arm.VaultAccessPolicyParameters
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "The parameter properties is required."})
		return
	}
	entries := convertSlice(body.Properties.AccessPolicies, func(e arm.AccessPolicy) service.AccessPolicy {
		return service.AccessPolicy{TenantID: e.TenantID, ObjectID: e.ObjectID, ApplicationID: e.ApplicationID, Permissions: service.Permissions(e.Permissions)}
	})
	v, err := a.s.svc.UpdateAccessPolicies(a.ctx, rg, name, kind, entries)
	if err != nil {
		a.fail(err)
		return
	}
	vaultID := a.s.svc.ResourceID(v)
	a.objectID = vaultID
	kind = strings.ToLower(kind)
	aps := wireVaultProperties(v.Properties).AccessPolicies
	if aps == nil {
		aps = []arm.AccessPolicy{}
	}
	writeJSON(a.w, http.StatusOK, arm.VaultAccessPolicyParameters{
		ID: vaultID + "/accessPolicies/" + kind, Name: kind, Type: "Microsoft.KeyVault/vaults/accessPolicies",
		Location: v.Location, Properties: &arm.VaultAccessPolicyProperties{AccessPolicies: aps},
	})
}
