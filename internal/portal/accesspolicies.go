package portal

import (
	"net/http"
	"slices"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv/arm"
)

// The Access policies part of the Access blade, for vaults on the access-policy model: add a
// policy, change the secret permissions of one, remove one. Each is one call of the API's
// Vaults_UpdateAccessPolicy (PUT .../accessPolicies/{replace|remove}), so it is authorized
// (accessPolicies/write) and audited (VaultPatch) as the same call made by the CLI.

const actPolicyWrite = "Microsoft.KeyVault/vaults/accessPolicies/write"

// policySecretPermissions are the secret permissions the form offers, in the Azure portal's
// order, with the words it shows.
var policySecretPermissions = []struct{ Value, Label string }{
	{"get", "Get"}, {"list", "List"}, {"set", "Set"}, {"delete", "Delete"}, {"recover", "Recover"},
	{"backup", "Backup"}, {"restore", "Restore"}, {"purge", "Purge"},
	{"rotate", "Rotate"}, {"getrotationpolicy", "Get rotation policy"}, {"setrotationpolicy", "Set rotation policy"},
}

// policyPermission reports whether value is one the form offers.
func policyPermission(value string) bool {
	return slices.ContainsFunc(policySecretPermissions, func(p struct{ Value, Label string }) bool { return p.Value == value })
}

// servePolicySet gives a principal exactly the secret permissions ticked (a new policy, or a
// changed one); an existing policy's key, certificate and storage permissions are kept.
func (p *Portal) servePolicySet(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	principal := strings.TrimSpace(r.PostFormValue("policy_principal"))
	var perms []string
	for _, pv := range r.PostForm["policy_perm"] {
		if policyPermission(pv) && !slices.Contains(perms, pv) {
			perms = append(perms, pv)
		}
	}
	fields := map[string]string{}
	if principal == "" {
		fields["policy_principal"] = "Enter a user's name (user@example.com) or an object id."
	}
	if len(perms) == 0 {
		fields["policy_perm"] = "Choose at least one secret permission."
	}
	if len(fields) > 0 {
		p.renderAccess(w, r, http.StatusBadRequest, fields, "Some fields need attention.")
		return
	}
	oid := principal
	if !guidRE.MatchString(principal) {
		if oid = p.userID(r, principal); oid == "" {
			p.renderAccess(w, r, http.StatusBadRequest, map[string]string{"policy_principal": noSuchUser(principal)}, "The access policy was not saved.")
			return
		}
	}
	entry := arm.AccessPolicy{TenantID: p.opts.TenantID, ObjectID: oid, Permissions: arm.Permissions{Secrets: perms}}
	for _, ap := range v.Properties.AccessPolicies {
		if strings.EqualFold(ap.ObjectID, oid) && ap.ApplicationID == "" { // keep what the portal does not show
			entry.Permissions.Keys, entry.Permissions.Certificates, entry.Permissions.Storage = ap.Permissions.Keys, ap.Permissions.Certificates, ap.Permissions.Storage
		}
	}
	if err := p.updatePolicies(r, v, "replace", entry); err != nil {
		if ae, ok := err.(*apiError); ok {
			f := map[string]string{}
			if ae.Status != http.StatusForbidden {
				f["policy_principal"] = friendly(ae)
			}
			p.renderAccess(w, r, ae.Status, f, friendly(ae))
			return
		}
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/access", "policysaved")
}

// servePolicyRemove removes the access policy of one principal (with its application, for a
// compound identity) from the vault.
func (p *Portal) servePolicyRemove(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	oid, app := r.PathValue("oid"), r.PostFormValue("application")
	if !guidRE.MatchString(oid) || (app != "" && !guidRE.MatchString(app)) {
		p.renderError(w, r, http.StatusBadRequest, "That is not an access policy of this vault.")
		return
	}
	if err := p.updatePolicies(r, v, "remove", arm.AccessPolicy{TenantID: p.opts.TenantID, ObjectID: oid, ApplicationID: app}); err != nil {
		if ae, ok := err.(*apiError); ok {
			p.renderAccess(w, r, ae.Status, nil, friendly(ae))
			return
		}
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/access", "policyremoved")
}

func (p *Portal) updatePolicies(r *http.Request, v *arm.Vault, kind string, entry arm.AccessPolicy) error {
	body := arm.VaultAccessPolicyParameters{Properties: &arm.VaultAccessPolicyProperties{AccessPolicies: []arm.AccessPolicy{entry}}}
	return p.arm(r, http.MethodPut, v.ID+"/accessPolicies/"+kind, armAPIVersion, nil, body, nil)
}

// policyRow is one row of the access policies table.
type policyRow struct {
	ObjectID, Application, Principal string
	Secrets                          []string
	Other                            bool // it also holds key, certificate or storage permissions
}

// policyRows lists the vault's access policies with the users among them named (names: object
// id to UPN).
func policyRows(v *arm.Vault, names map[string]string) []policyRow {
	rows := make([]policyRow, 0, len(v.Properties.AccessPolicies))
	for _, ap := range v.Properties.AccessPolicies {
		pm := ap.Permissions
		rows = append(rows, policyRow{ObjectID: ap.ObjectID, Application: ap.ApplicationID, Principal: names[ap.ObjectID],
			Secrets: pm.Secrets, Other: len(pm.Keys)+len(pm.Certificates)+len(pm.Storage) > 0})
	}
	return rows
}

// policyForm is what the access-policy form shows ticked: the policy named by ?policy= when the
// person chose to change one, else Get and List.
func policyForm(r *http.Request, v *arm.Vault) (principal string, ticked map[string]bool) {
	ticked = map[string]bool{}
	if r.Method == http.MethodPost {
		for _, pv := range r.PostForm["policy_perm"] {
			ticked[pv] = true
		}
		return r.PostFormValue("policy_principal"), ticked
	}
	if oid := r.URL.Query().Get("policy"); guidRE.MatchString(oid) {
		for _, ap := range v.Properties.AccessPolicies {
			if strings.EqualFold(ap.ObjectID, oid) && ap.ApplicationID == "" {
				for _, s := range ap.Permissions.Secrets {
					s = strings.ToLower(s)
					if s == "all" {
						for _, pp := range policySecretPermissions {
							ticked[pp.Value] = true
						}
					}
					ticked[s] = true
				}
				return ap.ObjectID, ticked
			}
		}
	}
	ticked["get"], ticked["list"] = true, true
	return "", ticked
}
