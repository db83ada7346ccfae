package httpapi

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/service"
)

// wireVault is a vault as ARM returns it.
func (a *armReq) wireVault(v *service.Vault) arm.Vault {
	return arm.Vault{
		ID: a.s.svc.ResourceID(v), Name: v.Name, Type: "Microsoft.KeyVault/vaults",
		Location: v.Location, Tags: tagsOrEmpty(v.Tags),
		SystemData: arm.SystemData{
			CreatedBy: v.CreatedBy, CreatedByType: "Application", CreatedAt: armTime(v.Created),
			LastModifiedBy: v.UpdatedBy, LastModifiedByType: "Application", LastModifiedAt: armTime(v.Updated),
		},
		Properties: wireVaultProperties(v.Properties),
	}
}

func (a *armReq) wireDeletedVault(v *service.Vault) arm.DeletedVault {
	return arm.DeletedVault{
		ID:   "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Microsoft.KeyVault/locations/" + v.Location + "/deletedVaults/" + v.Name,
		Name: v.Name, Type: "Microsoft.KeyVault/deletedVaults",
		Properties: arm.DeletedVaultProperties{
			VaultID: a.s.svc.ResourceID(v), Location: v.Location, Tags: tagsOrEmpty(v.Tags),
			DeletionDate: armTime(v.Deleted.DeletionDate), ScheduledPurgeDate: armTime(v.Deleted.ScheduledPurgeDate),
			PurgeProtectionEnabled: v.PurgeProtected(),
		},
	}
}

// tagsOrEmpty is tags, or {} where ARM never sends null.
func tagsOrEmpty(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return tags
}

// vault answers with one vault, which the request's audit record names.
func (a *armReq) vault(status int, v *service.Vault, err error) {
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.s.svc.ResourceID(v)
	writeJSON(a.w, status, a.wireVault(v))
}

func (a *armReq) vaultList(vs []*service.Vault, err error) {
	out := arm.PagedList[arm.Vault]{Value: make([]arm.Vault, 0, len(vs))}
	for _, v := range vs {
		out.Value = append(out.Value, a.wireVault(v))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) setVaultScope(rg, name string) {
	a.resourceID = "/subscriptions/" + a.s.cfg.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name
}

func (a *armReq) putVault(p []string) {
	a.setVaultScope(p[0], p[1])
	var body arm.VaultInput
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "The parameter properties is required."})
		return
	}
	if body.Properties.CreateMode != nil && strings.EqualFold(*body.Properties.CreateMode, "recover") {
		a.op = "VaultRecover"
	}
	v, created, err := a.s.svc.PutVault(a.ctx, p[0], p[1], service.VaultInput{Location: body.Location, Tags: body.Tags,
		Properties: *storedVaultProperties(body.Properties), AccessPoliciesByDefault: accessPoliciesByDefault(a.r.URL.Query().Get("api-version"))})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	a.vault(status, v, err)
}

// rbacDefaultSince is the first api-version whose new vaults use RBAC when the request names
// no enableRbacAuthorization; earlier versions (az 2.45, armkeyvault v1.5's 2024-11-01) get
// access policies, as Key Vault does.
const rbacDefaultSince = "2026-02-01"

// accessPoliciesByDefault reports whether a vault created at apiVersion without
// enableRbacAuthorization uses access policies (api-versions are dates, so they sort as text).
func accessPoliciesByDefault(apiVersion string) bool {
	return apiVersion < rbacDefaultSince
}

func (a *armReq) patchVault(p []string) {
	a.setVaultScope(p[0], p[1])
	var body arm.VaultPatch
	if !a.decode(&body) {
		return
	}
	v, err := a.s.svc.PatchVault(a.ctx, p[0], p[1], body.Tags, storedVaultProperties(body.Properties))
	a.vault(http.StatusOK, v, err)
}

func (a *armReq) getVault(p []string) {
	a.setVaultScope(p[0], p[1])
	v, err := a.s.svc.GetVault(a.ctx, p[0], p[1])
	a.vault(http.StatusOK, v, err)
}

func (a *armReq) deleteVault(p []string) {
	a.setVaultScope(p[0], p[1])
	if err := a.s.svc.DeleteVault(a.ctx, p[0], p[1]); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}

func (a *armReq) listVaultsInGroup(p []string) {
	vs, err := a.s.svc.ListVaults(a.ctx, p[0])
	a.vaultList(vs, err)
}

func (a *armReq) listVaults(_ []string) {
	vs, err := a.s.svc.ListVaults(a.ctx, "")
	a.vaultList(vs, err)
}

func (a *armReq) listDeletedVaults(_ []string) {
	vs, err := a.s.svc.ListDeletedVaults(a.ctx)
	out := arm.PagedList[arm.DeletedVault]{Value: make([]arm.DeletedVault, 0, len(vs))}
	for _, v := range vs {
		out.Value = append(out.Value, a.wireDeletedVault(v))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) getDeletedVault(p []string) {
	v, err := a.s.svc.GetDeletedVault(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, a.wireDeletedVault(v))
}

func (a *armReq) purgeDeletedVault(p []string) {
	if err := a.s.svc.PurgeDeletedVault(a.ctx, p[0], p[1]); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}

func (a *armReq) checkName(_ []string) {
	var body arm.CheckNameRequest
	if !a.decode(&body) {
		return
	}
	ok, reason, msg, err := a.s.svc.NameAvailable(a.ctx, body.Name)
	res := arm.NameAvailability{NameAvailable: ok}
	if !ok {
		res.Reason, res.Message = reason, msg
	}
	a.ok(http.StatusOK, res, err)
}

var resourceTypeFilter = regexp.MustCompile(`(?i)resourceType\s+eq\s+'([^']+)'`)

// listResources answers the generic resource query az uses to find a vault's resource group.
func (a *armReq) listResources(_ []string) {
	out := arm.List[arm.GenericResource]{Value: []arm.GenericResource{}}
	if m := resourceTypeFilter.FindStringSubmatch(a.r.URL.Query().Get("$filter")); m != nil && !strings.EqualFold(m[1], "Microsoft.KeyVault/vaults") {
		writeJSON(a.w, http.StatusOK, out)
		return
	}
	vs, err := a.s.svc.ListVaults(a.ctx, "")
	for _, v := range vs {
		out.Value = append(out.Value, arm.GenericResource{ID: a.s.svc.ResourceID(v), Name: v.Name, Type: "Microsoft.KeyVault/vaults", Location: v.Location, Tags: tagsOrEmpty(v.Tags)})
	}
	a.ok(http.StatusOK, out, err)
}
