package portal

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// The Access blade: the vault's permission model, its access policies, and its role
// assignments (Access control (IAM)), with adding and removing assignments.

type roleAssignment struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType"`
		Scope            string `json:"scope"`
	} `json:"properties"`
}

type roleDefinition struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RoleName string `json:"roleName"`
		Type     string `json:"type"`
	} `json:"properties"`
}

// assignmentRow is one row of the role assignments table.
type assignmentRow struct {
	Name, Role, Principal, PrincipalType, Scope string
	Inherited                                   bool
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (p *Portal) roleDefinitions(r *http.Request, scope string) ([]roleDefinition, error) {
	var page struct {
		Value []roleDefinition `json:"value"`
	}
	err := p.arm(r, http.MethodGet, scope+"/providers/Microsoft.Authorization/roleDefinitions", authzAPIVersion, nil, nil, &page)
	slices.SortFunc(page.Value, func(a, b roleDefinition) int { return strings.Compare(a.Properties.RoleName, b.Properties.RoleName) })
	return page.Value, err
}

func (p *Portal) serveAccess(w http.ResponseWriter, r *http.Request) {
	p.renderAccess(w, r, http.StatusOK, nil, "")
}

func (p *Portal) renderAccess(w http.ResponseWriter, r *http.Request, status int, fields map[string]string, msg string) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	var list struct {
		Value []roleAssignment `json:"value"`
	}
	assignErr := ""
	if err := p.arm(r, http.MethodGet, v.ID+"/providers/Microsoft.Authorization/roleAssignments", authzAPIVersion, nil, nil, &list); err != nil {
		if ae, ok := err.(*apiError); ok {
			assignErr = friendly(ae)
		} else {
			p.apiFailure(w, r, err)
			return
		}
	}
	defs, _ := p.roleDefinitions(r, v.ID)
	roleName := map[string]string{}
	for _, d := range defs {
		roleName[strings.ToLower(d.ID)] = d.Properties.RoleName
		roleName[strings.ToLower(d.Name)] = d.Properties.RoleName
	}
	rbac := v.Properties.EnableRbacAuthorization == nil || *v.Properties.EnableRbacAuthorization
	var policyIDs []string // the access policies' principals are named in the same lookups
	if !rbac {
		for _, ap := range v.Properties.AccessPolicies {
			policyIDs = append(policyIDs, ap.ObjectID)
		}
	}
	names := p.principalNames(r, list.Value, policyIDs)
	rows := make([]assignmentRow, 0, len(list.Value))
	for _, a := range list.Value {
		role := roleName[strings.ToLower(a.Properties.RoleDefinitionID)]
		if role == "" {
			role = roleName[strings.ToLower(lastSegment(a.Properties.RoleDefinitionID))]
		}
		if role == "" {
			role = a.Properties.RoleDefinitionID
		}
		who := names[a.Properties.PrincipalID]
		if who == "" {
			who = a.Properties.PrincipalID
		}
		rows = append(rows, assignmentRow{Name: a.Name, Role: role, Principal: who, PrincipalType: a.Properties.PrincipalType,
			Scope: a.Properties.Scope, Inherited: !strings.EqualFold(a.Properties.Scope, v.ID)})
	}
	data := map[string]any{"V": v, "Rows": rows, "Roles": defs, "AssignError": assignErr, "RBAC": rbac}
	if !rbac {
		principal, ticked := policyForm(r, v)
		data["Policies"], data["PolicyPrincipal"], data["PolicyTicked"], data["PolicyPerms"] = policyRows(v, names), principal, ticked, policySecretPermissions
	}
	p.render(w, r, status, "access", pageData{Title: "Access · " + v.Name, Vault: v.Name, Blade: "access", Flash: flashOf(r), Can: can,
		Fields: fields, Error: msg, Data: data})
}

// principalNames resolves the users among the assignments' principals, and among more (object
// ids of any kind), to their UPNs.
func (p *Portal) principalNames(r *http.Request, list []roleAssignment, more []string) map[string]string {
	ids := more
	for _, a := range list {
		if strings.EqualFold(a.Properties.PrincipalType, "User") {
			ids = append(ids, a.Properties.PrincipalID)
		}
	}
	return p.userNames(r, ids)
}

// userNames resolves users' object ids to their UPNs through Graph (at most 50 lookups; an id
// that is not a user's maps to "").
func (p *Portal) userNames(r *http.Request, ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		if _, done := out[id]; done || len(out) >= 50 || !guidRE.MatchString(id) {
			continue
		}
		var u struct {
			UPN string `json:"userPrincipalName"`
		}
		if err := p.graph(r, http.MethodGet, "/v1.0/users/"+id, &u); err == nil {
			out[id] = u.UPN
		} else {
			out[id] = ""
		}
	}
	return out
}

// userID is the object id of the user named upn, "" when the directory has none.
func (p *Portal) userID(r *http.Request, upn string) string {
	var u struct {
		ID string `json:"id"`
	}
	if err := p.graph(r, http.MethodGet, "/v1.0/users/"+url.PathEscape(upn), &u); err != nil {
		return ""
	}
	return u.ID
}

func noSuchUser(name string) string {
	return "There is no user named '" + truncate(name, 100) + "' in the directory."
}

func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// serveRoleAssign adds a role assignment on the vault.
func (p *Portal) serveRoleAssign(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	principal, role := strings.TrimSpace(r.PostFormValue("principal")), r.PostFormValue("role")
	fields := map[string]string{}
	if principal == "" {
		fields["principal"] = "Enter a user's name (user@example.com) or an object id."
	}
	if !strings.Contains(role, "/providers/Microsoft.Authorization/roleDefinitions/") {
		fields["role"] = "Choose a role."
	}
	if len(fields) > 0 {
		p.renderAccess(w, r, http.StatusBadRequest, fields, "Some fields need attention.")
		return
	}
	oid, ptype := principal, ""
	if !guidRE.MatchString(principal) {
		if oid = p.userID(r, principal); oid == "" {
			p.renderAccess(w, r, http.StatusBadRequest, map[string]string{"principal": noSuchUser(principal)}, "The role assignment was not added.")
			return
		}
		ptype = "User"
	}
	props := map[string]any{"roleDefinitionId": role, "principalId": oid}
	if ptype != "" {
		props["principalType"] = ptype
	}
	err = p.arm(r, http.MethodPut, v.ID+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), authzAPIVersion, nil,
		map[string]any{"properties": props}, nil)
	if err != nil {
		if ae, ok := err.(*apiError); ok {
			field := "principal"
			if ae.Status == http.StatusForbidden {
				field = ""
			}
			f := map[string]string{}
			if field != "" {
				f[field] = friendly(ae)
			}
			p.renderAccess(w, r, ae.Status, f, friendly(ae))
			return
		}
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/access", "assigned")
}

// serveRoleUnassign removes a role assignment made at the vault.
func (p *Portal) serveRoleUnassign(w http.ResponseWriter, r *http.Request) {
	v, err := p.findVault(r, r.PathValue("vault"))
	if err != nil {
		p.apiFailure(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !guidRE.MatchString(id) {
		p.renderError(w, r, http.StatusBadRequest, "That is not a role assignment's name.")
		return
	}
	if err := p.arm(r, http.MethodDelete, v.ID+"/providers/Microsoft.Authorization/roleAssignments/"+id, authzAPIVersion, nil, nil, nil); err != nil {
		p.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, "/portal/vaults/"+pathEscape(v.Name)+"/access", "unassigned")
}
