package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
)

// authorizationSegment marks a Microsoft.Authorization path: what precedes it is the scope,
// which may have any depth (/, a subscription, a resource group, a vault, a secret).
const authorizationSegment = "/providers/microsoft.authorization/"

// authorizationPath splits p into its scope and the segments after the provider.
func authorizationPath(p string) (scope string, rest []string, ok bool) {
	i := strings.LastIndex(strings.ToLower(p), authorizationSegment)
	if i < 0 {
		return "", nil, false
	}
	return p[:i], strings.Split(strings.Trim(p[i+len(authorizationSegment):], "/"), "/"), true
}

// authorizationRoute is one Microsoft.Authorization route: the type segment, whether a name
// follows it, the method and the audit operation name.
type authorizationRoute struct {
	kind   string
	named  bool
	method string
	op     string
	handle func(a *armReq, scope, name string)
}

// authorizationRoutes are the role routes, the just-in-time elevation ones (arm_pim.go) and
// Azure Policy's (arm_policy.go).
var authorizationRoutes = slices.Concat(roleRoutes, pimRoutes, policyRoutes)

var roleRoutes = []authorizationRoute{
	{"roleassignments", false, "GET", "RoleAssignmentList", (*armReq).listRoleAssignments},
	{"roleassignments", true, "GET", "RoleAssignmentRead", (*armReq).getRoleAssignment},
	{"roleassignments", true, "PUT", "RoleAssignmentWrite", (*armReq).putRoleAssignment},
	{"roleassignments", true, "DELETE", "RoleAssignmentDelete", (*armReq).deleteRoleAssignment},
	{"roledefinitions", false, "GET", "RoleDefinitionList", (*armReq).listRoleDefinitions},
	{"roledefinitions", true, "GET", "RoleDefinitionRead", (*armReq).getRoleDefinition},
	{"roledefinitions", true, "PUT", "RoleDefinitionWrite", (*armReq).putRoleDefinition},
	{"roledefinitions", true, "DELETE", "RoleDefinitionDelete", (*armReq).deleteRoleDefinition},
}

// serveAuthorization serves a Microsoft.Authorization request.
func (s *Server) serveAuthorization(w http.ResponseWriter, r *http.Request, scope string, rest []string) {
	var found *authorizationRoute
	pathOK := false
	if len(rest) == 3 && rest[1] != "" && rest[2] != "" {
		rest = []string{rest[0] + "/" + rest[2], rest[1]} // POST .../{kind}/{name}/{verb}: route kind "kind/verb"
	}
	for i := range authorizationRoutes {
		rt := &authorizationRoutes[i]
		if !strings.EqualFold(rest[0], rt.kind) || rt.named != (len(rest) == 2) || len(rest) > 2 || len(rest) == 2 && rest[1] == "" {
			continue
		}
		pathOK = true
		if rt.method == r.Method {
			found = rt
			break
		}
	}
	if found == nil {
		code, status := "InvalidResourceType", http.StatusNotFound
		if pathOK {
			code, status = "MethodNotAllowed", http.StatusMethodNotAllowed
		}
		azkv.WriteError(w, status, azkv.NewError(code, "The requested path "+r.URL.Path+" with method "+r.Method+" is not supported.", ""))
		return
	}
	a := &armReq{s: s, w: w, r: r, ctx: r.Context(), op: found.op, resourceID: scopeOrSlash(scope)}
	if a.authenticate(false) { // ARM tokens only, whatever the scope looks like
		name := ""
		if found.named {
			name = rest[1]
			a.objectID = name
		}
		info(r).arm = a // the facts of an intent taken while it is served
		found.handle(a, scope, name)
	}
	ri := info(r)
	ri.op, ri.resourceID, ri.objectID = a.op, a.resourceID, a.objectID
	if a.claims != nil {
		ri.setClaims(*a.claims)
	}
}

func scopeOrSlash(scope string) string {
	if strings.Trim(scope, "/") == "" {
		return "/"
	}
	return scope
}

// armRoleAssignment is a role assignment in ARM's shape.
type armRoleAssignment struct {
	ID         string                      `json:"id"`
	Type       string                      `json:"type"`
	Name       string                      `json:"name"`
	Properties armRoleAssignmentProperties `json:"properties"`
}

type armRoleAssignmentProperties struct {
	RoleDefinitionID                   string  `json:"roleDefinitionId"`
	PrincipalID                        string  `json:"principalId"`
	PrincipalType                      string  `json:"principalType"`
	Scope                              string  `json:"scope"`
	Condition                          *string `json:"condition"`
	ConditionVersion                   *string `json:"conditionVersion"`
	CreatedOn                          string  `json:"createdOn,omitempty"`
	UpdatedOn                          string  `json:"updatedOn,omitempty"`
	CreatedBy                          *string `json:"createdBy"`
	UpdatedBy                          *string `json:"updatedBy"`
	DelegatedManagedIdentityResourceID *string `json:"delegatedManagedIdentityResourceId"`
	Description                        *string `json:"description"`
}

func strOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *armReq) roleDefinitionID(guid string) string {
	return "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + guid
}

func (a *armReq) wireAssignment(ra *rbac.Assignment) armRoleAssignment {
	w := armRoleAssignment{ID: ra.ID(), Type: "Microsoft.Authorization/roleAssignments", Name: ra.Name,
		Properties: armRoleAssignmentProperties{RoleDefinitionID: a.roleDefinitionID(ra.RoleID), PrincipalID: ra.PrincipalID,
			PrincipalType: ra.PrincipalType, Scope: ra.Scope, Condition: strOrNull(ra.Condition), ConditionVersion: strOrNull(ra.ConditionVersion),
			CreatedBy: strOrNull(ra.CreatedBy), UpdatedBy: strOrNull(ra.UpdatedBy), Description: strOrNull(ra.Description)}}
	if !ra.CreatedOn.IsZero() {
		w.Properties.CreatedOn, w.Properties.UpdatedOn = armTime(ra.CreatedOn), armTime(ra.UpdatedOn)
	}
	return w
}

func (a *armReq) putRoleAssignment(scope, name string) {
	var body struct {
		Properties *struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
			Description      string `json:"description"`
			Condition        string `json:"condition"`
			ConditionVersion string `json:"conditionVersion"`
		} `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(errNoProperties)
		return
	}
	p := body.Properties
	ra, err := a.s.svc.CreateRoleAssignment(a.ctx, scope, name, service.RoleAssignmentInput{RoleDefinitionID: p.RoleDefinitionID,
		PrincipalID: p.PrincipalID, PrincipalType: p.PrincipalType, Description: p.Description, Condition: p.Condition, ConditionVersion: p.ConditionVersion})
	if err == nil {
		a.resourceID = ra.ID()
	}
	a.ok(http.StatusCreated, a.wireAssignment(&ra), err)
}

func (a *armReq) getRoleAssignment(scope, name string) {
	ra, err := a.s.svc.GetRoleAssignment(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wireAssignment(&ra), err)
}

func (a *armReq) deleteRoleAssignment(scope, name string) {
	ra, found, err := a.s.svc.DeleteRoleAssignment(a.ctx, scope, name)
	switch {
	case err != nil:
		a.fail(err)
	case !found:
		a.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(a.w, http.StatusOK, a.wireAssignment(&ra))
	}
}

func (a *armReq) listRoleAssignments(scope, _ string) {
	f, err := service.ParseAssignmentFilter(a.r.URL.Query().Get("$filter"))
	if err != nil {
		a.fail(err)
		return
	}
	list, err := a.s.svc.ListRoleAssignments(a.ctx, scope, f)
	out := struct {
		Value []armRoleAssignment `json:"value"`
	}{Value: make([]armRoleAssignment, 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wireAssignment(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

// armRoleDefinition is a role definition in ARM's shape.
type armRoleDefinition struct {
	ID         string                      `json:"id"`
	Name       string                      `json:"name"`
	Type       string                      `json:"type"`
	Properties armRoleDefinitionProperties `json:"properties"`
}

type armRoleDefinitionProperties struct {
	RoleName         string          `json:"roleName"`
	Type             string          `json:"type"`
	Description      string          `json:"description"`
	AssignableScopes []string        `json:"assignableScopes"`
	Permissions      []armPermission `json:"permissions"`
	CreatedOn        string          `json:"createdOn,omitempty"`
	UpdatedOn        string          `json:"updatedOn,omitempty"`
	CreatedBy        *string         `json:"createdBy"`
	UpdatedBy        *string         `json:"updatedBy"`
}

type armPermission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *armReq) wireRole(r *rbac.RoleDefinition) armRoleDefinition {
	perms := make([]armPermission, 0, len(r.Permissions))
	for _, p := range r.Permissions {
		perms = append(perms, armPermission{orEmpty(p.Actions), orEmpty(p.NotActions), orEmpty(p.DataActions), orEmpty(p.NotDataActions)})
	}
	w := armRoleDefinition{ID: a.roleDefinitionID(r.ID), Name: r.ID, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: armRoleDefinitionProperties{RoleName: r.Name, Type: service.RoleType(r), Description: r.Description,
			AssignableScopes: orEmpty(r.AssignableScopes), Permissions: perms, CreatedBy: strOrNull(r.CreatedBy), UpdatedBy: strOrNull(r.UpdatedBy)}}
	if !r.CreatedOn.IsZero() {
		w.Properties.CreatedOn, w.Properties.UpdatedOn = armTime(r.CreatedOn), armTime(r.UpdatedOn)
	}
	return w
}

func (a *armReq) listRoleDefinitions(scope, _ string) {
	f, err := service.ParseRoleDefinitionFilter(a.r.URL.Query().Get("$filter"))
	if err != nil {
		a.fail(err)
		return
	}
	list, err := a.s.svc.ListRoleDefinitions(a.ctx, scope, f)
	out := struct {
		Value []armRoleDefinition `json:"value"`
	}{Value: make([]armRoleDefinition, 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wireRole(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) getRoleDefinition(scope, id string) {
	r, err := a.s.svc.GetRoleDefinition(a.ctx, scope, id)
	a.ok(http.StatusOK, a.wireRole(&r), err)
}

func (a *armReq) putRoleDefinition(scope, id string) {
	var body struct {
		Properties *struct {
			RoleName         string          `json:"roleName"`
			Description      string          `json:"description"`
			Type             string          `json:"type"`
			Permissions      []armPermission `json:"permissions"`
			AssignableScopes []string        `json:"assignableScopes"`
		} `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(errNoProperties)
		return
	}
	p := body.Properties
	perms := make([]authz.Permission, 0, len(p.Permissions))
	for _, wp := range p.Permissions {
		perms = append(perms, authz.Permission{Actions: wp.Actions, NotActions: wp.NotActions, DataActions: wp.DataActions, NotDataActions: wp.NotDataActions})
	}
	r, created, err := a.s.svc.PutRoleDefinition(a.ctx, scope, id, service.RoleDefinitionInput{RoleName: p.RoleName, Description: p.Description,
		Type: p.Type, Permissions: perms, AssignableScopes: p.AssignableScopes})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	a.ok(status, a.wireRole(&r), err)
}

func (a *armReq) deleteRoleDefinition(scope, id string) {
	r, found, err := a.s.svc.DeleteRoleDefinition(a.ctx, scope, id)
	switch {
	case err != nil:
		a.fail(err)
	case !found:
		a.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(a.w, http.StatusOK, a.wireRole(&r))
	}
}
