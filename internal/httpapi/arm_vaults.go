package httpapi

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/strongroom/strongroom/internal/service"
)

// vaultJSON is a vault as ARM returns it.
func (a *armReq) vaultJSON(v *service.Vault) map[string]any {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	info(a.r).objectID = a.s.svc.ResourceID(v)
	return map[string]any{
		"id": a.s.svc.ResourceID(v), "name": v.Name, "type": "Microsoft.KeyVault/vaults",
		"location": v.Location, "tags": tags,
		"systemData": map[string]any{
			"createdBy": v.CreatedBy, "createdByType": "Application", "createdAt": armTime(v.Created),
			"lastModifiedBy": v.UpdatedBy, "lastModifiedByType": "Application", "lastModifiedAt": armTime(v.Updated),
		},
		"properties": v.Properties,
	}
}

func (a *armReq) deletedVaultJSON(v *service.Vault) map[string]any {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{
		"id":   "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Microsoft.KeyVault/locations/" + v.Location + "/deletedVaults/" + v.Name,
		"name": v.Name, "type": "Microsoft.KeyVault/deletedVaults",
		"properties": map[string]any{
			"vaultId": a.s.svc.ResourceID(v), "location": v.Location, "tags": tags,
			"deletionDate": armTime(v.Deleted.DeletionDate), "scheduledPurgeDate": armTime(v.Deleted.ScheduledPurgeDate),
			"purgeProtectionEnabled": v.PurgeProtected(),
		},
	}
}

func (a *armReq) vaultList(vs []*service.Vault, err error) {
	out := []any{}
	for _, v := range vs {
		out = append(out, a.vaultJSON(v))
	}
	a.ok(http.StatusOK, map[string]any{"value": out, "nextLink": nil}, err)
}

func (a *armReq) setVaultScope(rg, name string) {
	info(a.r).resourceID = "/subscriptions/" + a.s.cfg.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name
}

func (a *armReq) putVault(p []string) {
	a.setVaultScope(p[0], p[1])
	var body struct {
		Location   string                   `json:"location"`
		Tags       map[string]string        `json:"tags"`
		Properties *service.VaultProperties `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "The parameter properties is required."})
		return
	}
	if body.Properties.CreateMode != nil && strings.EqualFold(*body.Properties.CreateMode, "recover") {
		info(a.r).op = "VaultRecover"
	}
	v, created, err := a.s.svc.PutVault(a.r.Context(), p[0], p[1], service.VaultInput{Location: body.Location, Tags: body.Tags, Properties: *body.Properties})
	if err != nil {
		a.fail(err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(a.w, status, a.vaultJSON(v))
}

func (a *armReq) patchVault(p []string) {
	a.setVaultScope(p[0], p[1])
	var body struct {
		Tags       map[string]string        `json:"tags"`
		Properties *service.VaultProperties `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	v, err := a.s.svc.PatchVault(a.r.Context(), p[0], p[1], body.Tags, body.Properties)
	if err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, a.vaultJSON(v))
}

func (a *armReq) getVault(p []string) {
	a.setVaultScope(p[0], p[1])
	v, err := a.s.svc.GetVault(a.r.Context(), p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, a.vaultJSON(v))
}

func (a *armReq) deleteVault(p []string) {
	a.setVaultScope(p[0], p[1])
	if err := a.s.svc.DeleteVault(a.r.Context(), p[0], p[1]); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}

func (a *armReq) listVaultsInGroup(p []string) {
	vs, err := a.s.svc.ListVaults(a.r.Context(), p[0])
	a.vaultList(vs, err)
}

func (a *armReq) listVaults(_ []string) {
	vs, err := a.s.svc.ListVaults(a.r.Context(), "")
	a.vaultList(vs, err)
}

func (a *armReq) listDeletedVaults(_ []string) {
	vs, err := a.s.svc.ListDeletedVaults(a.r.Context())
	out := []any{}
	for _, v := range vs {
		out = append(out, a.deletedVaultJSON(v))
	}
	a.ok(http.StatusOK, map[string]any{"value": out, "nextLink": nil}, err)
}

func (a *armReq) getDeletedVault(p []string) {
	v, err := a.s.svc.GetDeletedVault(a.r.Context(), p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, a.deletedVaultJSON(v))
}

func (a *armReq) purgeDeletedVault(p []string) {
	if err := a.s.svc.PurgeDeletedVault(a.r.Context(), p[0], p[1]); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}

func (a *armReq) checkName(_ []string) {
	var body struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if !a.decode(&body) {
		return
	}
	ok, reason, msg, err := a.s.svc.NameAvailable(a.r.Context(), body.Name)
	res := map[string]any{"nameAvailable": ok}
	if !ok {
		res["reason"], res["message"] = reason, msg
	}
	a.ok(http.StatusOK, res, err)
}

var resourceTypeFilter = regexp.MustCompile(`(?i)resourceType\s+eq\s+'([^']+)'`)

// listResources answers the generic resource query az uses to find a vault's resource group.
func (a *armReq) listResources(_ []string) {
	if m := resourceTypeFilter.FindStringSubmatch(a.r.URL.Query().Get("$filter")); m != nil && !strings.EqualFold(m[1], "Microsoft.KeyVault/vaults") {
		writeJSON(a.w, http.StatusOK, map[string]any{"value": []any{}})
		return
	}
	vs, err := a.s.svc.ListVaults(a.r.Context(), "")
	out := []any{}
	for _, v := range vs {
		tags := v.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		out = append(out, map[string]any{"id": a.s.svc.ResourceID(v), "name": v.Name, "type": "Microsoft.KeyVault/vaults", "location": v.Location, "tags": tags})
	}
	a.ok(http.StatusOK, map[string]any{"value": out}, err)
}
