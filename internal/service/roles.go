// Role assignments and role definitions (Microsoft.Authorization): validation, authorization
// through guard, and Azure's error codes; the rbac package stores and indexes them.

package service

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
)

// The Microsoft.Authorization actions the routes check.
const (
	actionRoleAssignmentRead  = "Microsoft.Authorization/roleAssignments/read"
	actionRoleDefinitionRead  = "Microsoft.Authorization/roleDefinitions/read"
	actionRoleDefinitionWrite = "Microsoft.Authorization/roleDefinitions/write"
	actionRoleDefinitionDel   = "Microsoft.Authorization/roleDefinitions/delete"
	roleDefinitionsPath       = "/providers/Microsoft.Authorization/roleDefinitions/"
)

// RoleAssignmentInput is the body of a role assignment PUT.
type RoleAssignmentInput struct {
	RoleDefinitionID string
	PrincipalID      string
	PrincipalType    string
	Description      string
	Condition        string
	ConditionVersion string
}

// PrincipalTypes answers what kind of directory object an id names (the identity service); nil
// skips the check.
type PrincipalTypes func(objectID string) (principalType string, ok bool)

// scopeRef is a scope a role may be assigned at: "/", /subscriptions/{s},
// .../resourceGroups/{rg}, .../providers/Microsoft.KeyVault/vaults/{v} or .../vaults/{v}/secrets/{name}.
type scopeRef struct {
	canonical string // with ARM's spelling of the fixed segments
	rg, vault string
}

// parseScope checks scope's syntax and that it is in this deployment's subscription. It reads
// nothing, so that callers authorize before they reveal whether the resource exists.
func (s *Service) parseScope(scope string) (scopeRef, error) {
	seg := strings.Split(strings.Trim(scope, "/"), "/")
	if len(seg) == 1 && seg[0] == "" {
		return scopeRef{canonical: "/"}, nil
	}
	invalid := newErr(ErrBadRequest, "InvalidScope", "", "The scope '%s' is not valid: a role can be assigned to a subscription, a resource group, a key vault or a secret of a key vault.", scope)
	switch len(seg) {
	case 2, 4, 8, 10: // a subscription, a resource group, a vault, a secret
	default:
		return scopeRef{}, invalid
	}
	for _, x := range seg {
		if x == "" {
			return scopeRef{}, invalid
		}
	}
	if !strings.EqualFold(seg[0], "subscriptions") {
		return scopeRef{}, invalid
	}
	if !strings.EqualFold(seg[1], s.opts.SubscriptionID) {
		return scopeRef{}, newErr(ErrNotFound, "SubscriptionNotFound", "", "The subscription '%s' could not be found.", seg[1])
	}
	ref := scopeRef{canonical: s.SubscriptionScope()}
	if len(seg) == 2 {
		return ref, nil
	}
	if !strings.EqualFold(seg[2], "resourceGroups") || !rgNameRE.MatchString(seg[3]) {
		return scopeRef{}, invalid
	}
	ref.rg, ref.canonical = seg[3], s.rgID(seg[3])
	if len(seg) == 4 {
		return ref, nil
	}
	if !strings.EqualFold(seg[4], "providers") || !strings.EqualFold(seg[5], "Microsoft.KeyVault") || !strings.EqualFold(seg[6], "vaults") {
		return scopeRef{}, invalid
	}
	ref.vault, ref.canonical = seg[7], ref.canonical+"/providers/Microsoft.KeyVault/vaults/"+seg[7]
	if len(seg) == 8 {
		return ref, nil
	}
	if !strings.EqualFold(seg[8], "secrets") || !validSecretName(seg[9]) {
		return scopeRef{}, invalid
	}
	ref.canonical += "/secrets/" + seg[9]
	return ref, nil
}

// exists checks that the scope's resource group and vault exist (secrets are data-plane
// objects: a role may be assigned on a secret before it is set).
func (s *Service) exists(ctx context.Context, ref scopeRef) error {
	if ref.rg == "" {
		return nil
	}
	if _, err := s.resourceGroup(ctx, ref.rg); err != nil {
		return err
	}
	if ref.vault == "" {
		return nil
	}
	v := s.cachedVault(ref.vault)
	if v == nil || v.Deleted != nil || !strings.EqualFold(v.ResourceGroup, ref.rg) {
		return newErr(ErrNotFound, "ResourceNotFound", "", "The Resource 'Microsoft.KeyVault/vaults/%s' under resource group '%s' was not found.", ref.vault, ref.rg)
	}
	return nil
}

// scopeSyntax is scope in ARM's spelling, checked for syntax only.
func (s *Service) scopeSyntax(scope string) (string, error) {
	ref, err := s.parseScope(scope)
	return ref.canonical, err
}

// roleGUID takes the GUID out of a role definition id in any of the forms ARM accepts
// (/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{g}, the tenant-level
// /providers/... form, or the GUID alone).
func roleGUID(id string) (string, bool) {
	g := id
	if i := strings.LastIndex(strings.ToLower(id), strings.ToLower(roleDefinitionsPath)); i >= 0 {
		prefix := id[:i]
		if prefix != "" && !strings.HasPrefix(strings.ToLower(prefix), "/subscriptions/") {
			return "", false
		}
		g = id[i+len(roleDefinitionsPath):]
	}
	u, err := uuid.Parse(g)
	if err != nil || len(g) != 36 {
		return "", false
	}
	return u.String(), true
}

// CreateRoleAssignment assigns a role at scope under name (a GUID).
func (s *Service) CreateRoleAssignment(ctx context.Context, scope, name string, in RoleAssignmentInput) (rbac.Assignment, error) {
	roles := s.opts.Roles
	target, _ := roleGUID(in.RoleDefinitionID)
	if err := s.guardRoleWrite(ctx, authz.ActionRoleAssignmentWrite, scopeOrRoot(scope), target); err != nil {
		return rbac.Assignment{}, err // authorized first, so that refusals look alike
	}
	if _, err := uuid.Parse(name); err != nil || len(name) != 36 {
		return rbac.Assignment{}, newErr(ErrBadRequest, "InvalidRoleAssignmentId", "", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)
	}
	ref, err := s.parseScope(scope)
	if err != nil {
		return rbac.Assignment{}, err
	}
	scope = ref.canonical
	roleID, ok := roleGUID(in.RoleDefinitionID)
	if !ok {
		return rbac.Assignment{}, newErr(ErrBadRequest, "InvalidRoleDefinitionId", "", "The role definition ID '%s' is not valid.", in.RoleDefinitionID)
	}
	role, ok := roles.Role(roleID)
	if !ok {
		return rbac.Assignment{}, newErr(ErrBadRequest, "RoleDefinitionDoesNotExist", "", "The specified role definition with ID '%s' does not exist.", roleID)
	}
	if !assignableAt(&role.Role, scope) {
		return rbac.Assignment{}, newErr(ErrBadRequest, "InvalidRoleAssignmentScope", "", "The role definition '%s' is not assignable at scope '%s'.", role.Name, scope)
	}
	principal, err := uuid.Parse(in.PrincipalID)
	if err != nil || len(in.PrincipalID) != 36 {
		return rbac.Assignment{}, newErr(ErrBadRequest, "InvalidPrincipalId", "", "A valid principal ID must be provided for role assignment.")
	}
	ptype, err := s.principalType(principal.String(), in.PrincipalType)
	if err != nil {
		return rbac.Assignment{}, err
	}
	if in.Condition != "" && in.ConditionVersion != "2.0" {
		return rbac.Assignment{}, newErr(ErrBadRequest, "InvalidConditionVersion", "", "The condition version '%s' is not supported; use '2.0'.", in.ConditionVersion)
	}
	if in.Condition != "" {
		// Conditions are not evaluated; refusing them beats granting more than was asked.
		return rbac.Assignment{}, newErr(ErrBadRequest, "ConditionNotSupported", "", "Role assignment conditions are not supported by this server.")
	}
	c, _ := CallerFrom(ctx)
	if err := s.guardRoleWrite(ctx, authz.ActionRoleAssignmentWrite, scope, roleID); err != nil {
		return rbac.Assignment{}, err
	}
	if err := s.exists(ctx, ref); err != nil {
		return rbac.Assignment{}, err
	}
	a, err := roles.CreateAssignment(ctx, rbac.Assignment{Name: name, Scope: scope, RoleID: roleID, PrincipalID: principal.String(),
		PrincipalType: ptype, Description: in.Description}, c.ObjectID)
	switch {
	case errors.Is(err, rbac.ErrAssignmentExists):
		return a, newErr(ErrConflict, "RoleAssignmentExists", "", "The role assignment already exists.")
	case errors.Is(err, rbac.ErrAssignmentChanged):
		return a, newErr(ErrConflict, "RoleAssignmentUpdateNotPermitted", "", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	case errors.Is(err, rbac.ErrUnknownRole):
		return a, newErr(ErrBadRequest, "RoleDefinitionDoesNotExist", "", "The specified role definition with ID '%s' does not exist.", roleID)
	}
	return a, err
}

// principalType checks the principal against the directory and returns its type.
func (s *Service) principalType(objectID, given string) (string, error) {
	switch {
	case given == "", strings.EqualFold(given, "User"), strings.EqualFold(given, "Group"), strings.EqualFold(given, "ServicePrincipal"),
		strings.EqualFold(given, "ForeignGroup"), strings.EqualFold(given, "Device"):
	default:
		return "", newErr(ErrBadRequest, "InvalidPrincipalType", "", "The principal type '%s' is not valid.", given)
	}
	if s.opts.PrincipalTypes == nil {
		if given == "" {
			given = "ServicePrincipal"
		}
		return given, nil
	}
	actual, ok := s.opts.PrincipalTypes(objectID)
	if !ok {
		return "", newErr(ErrBadRequest, "PrincipalNotFound", "", "Principal %s does not exist in the directory %s. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay.", strings.ReplaceAll(objectID, "-", ""), s.opts.TenantID)
	}
	if given != "" && !strings.EqualFold(given, actual) {
		return "", newErr(ErrBadRequest, "UnmatchedPrincipalType", "", "The PrincipalType '%s' of the principal does not match the value '%s' sent in the request.", actual, given)
	}
	return actual, nil
}

func assignableAt(r *authz.Role, scope string) bool {
	if r.BuiltIn {
		return true
	}
	for _, as := range r.AssignableScopes {
		if authz.ScopeContains(as, scope) {
			return true
		}
	}
	return false
}

// guardRoleWrite authorizes writing or deleting an assignment of roleID at scope.
func (s *Service) guardRoleWrite(ctx context.Context, action, scope, roleID string) error {
	c, ok := CallerFrom(ctx)
	if !ok {
		return s.guard(ctx, action, false, scope)
	}
	return s.decide(ctx, c, authz.Request{PrincipalID: c.ObjectID, Groups: s.groupsOf(c.ObjectID), Action: authz.Action(action), Scope: scope, TargetRole: roleID})
}

func assignmentNotFound(name string) error {
	return newErr(ErrNotFound, "RoleAssignmentNotFound", "", "The role assignment '%s' is not found.", name)
}

// GetRoleAssignment returns the assignment name at scope.
func (s *Service) GetRoleAssignment(ctx context.Context, scope, name string) (rbac.Assignment, error) {
	roles := s.opts.Roles
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); err != nil {
		return rbac.Assignment{}, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return rbac.Assignment{}, err
	}
	a, ok := roles.Assignment(name)
	if !ok || !sameScope(a.Scope, scope) {
		return rbac.Assignment{}, assignmentNotFound(name)
	}
	return a, nil
}

// DeleteRoleAssignment removes the assignment name at scope; found is false when there was none
// (ARM answers 204).
func (s *Service) DeleteRoleAssignment(ctx context.Context, scope, name string) (rbac.Assignment, bool, error) {
	roles := s.opts.Roles
	if err := s.guard(ctx, authz.ActionRoleAssignmentDelete, false, scopeOrRoot(scope)); err != nil {
		return rbac.Assignment{}, false, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return rbac.Assignment{}, false, err
	}
	a, ok := roles.Assignment(name)
	if !ok || !sameScope(a.Scope, scope) {
		return rbac.Assignment{}, false, nil
	}
	if err := s.guardRoleWrite(ctx, authz.ActionRoleAssignmentDelete, a.Scope, a.RoleID); err != nil {
		return rbac.Assignment{}, false, err
	}
	a, found, err := roles.DeleteAssignment(ctx, name)
	if errors.Is(err, rbac.ErrProtected) {
		return a, true, newErr(ErrBadRequest, "RoleAssignmentProtected", "", "The bootstrap admin's role assignments cannot be deleted.")
	}
	return a, found, err
}

// AssignmentFilter is a parsed $filter of a role assignment list.
type AssignmentFilter struct {
	AtScope     bool   // atScope(): assignments at the scope or above it
	PrincipalID string // principalId eq '...'
	AssignedTo  string // assignedTo('...'): the principal and its groups
}

// ParseAssignmentFilter reads the $filter forms az and the SDKs send, alone or joined by "and".
func ParseAssignmentFilter(f string) (AssignmentFilter, error) {
	var out AssignmentFilter
	f = strings.TrimSpace(f)
	if f == "" {
		return out, nil
	}
	for _, part := range splitAnd(f) {
		p := strings.TrimSpace(part)
		lower := strings.ToLower(p)
		switch {
		case strings.ReplaceAll(lower, " ", "") == "atscope()":
			out.AtScope = true
		case strings.HasPrefix(lower, "principalid"):
			v, ok := quotedAfter(p, "eq")
			if !ok {
				return out, badFilter(f)
			}
			out.PrincipalID = v
		case strings.HasPrefix(lower, "assignedto("):
			v := strings.Trim(strings.TrimSpace(strings.TrimSuffix(p[len("assignedTo("):], ")")), "'")
			if v == "" {
				return out, badFilter(f)
			}
			out.AssignedTo = v
		default:
			return out, badFilter(f)
		}
	}
	return out, nil
}

func splitAnd(f string) []string {
	var parts []string
	for {
		i := strings.Index(strings.ToLower(f), " and ")
		if i < 0 {
			return append(parts, f)
		}
		parts, f = append(parts, f[:i]), f[i+5:]
	}
}

// quotedAfter returns the quoted value after op in "name op 'value'".
func quotedAfter(expr, op string) (string, bool) {
	fields := strings.Fields(expr)
	if len(fields) != 3 || !strings.EqualFold(fields[1], op) {
		return "", false
	}
	v := fields[2]
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return "", false
	}
	return v[1 : len(v)-1], true
}

func badFilter(f string) error {
	return newErr(ErrBadRequest, "InvalidFilterInQueryString", "", "The filter '%s' is not supported.", f)
}

// ListRoleAssignments lists the assignments that apply at scope (at it and above it) and,
// unless the filter says atScope(), those below it too.
func (s *Service) ListRoleAssignments(ctx context.Context, scope string, f AssignmentFilter) ([]rbac.Assignment, error) {
	roles := s.opts.Roles
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); err != nil {
		return nil, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return nil, err
	}
	var principals []string
	switch {
	case f.AssignedTo != "":
		principals = append([]string{f.AssignedTo}, s.groupsOf(strings.ToLower(f.AssignedTo))...)
	case f.PrincipalID != "":
		principals = []string{f.PrincipalID}
	}
	now := s.now()
	return roles.ListAssignments(func(a *rbac.Assignment) bool {
		related := authz.ScopeContains(a.Scope, scope) || !f.AtScope && authz.ScopeContains(scope, a.Scope)
		if !related || !a.EndsAt.IsZero() && !now.Before(a.EndsAt) { // an ended activation is gone, as in Azure
			return false
		}
		if principals == nil {
			return true
		}
		for _, p := range principals {
			if strings.EqualFold(p, a.PrincipalID) {
				return true
			}
		}
		return false
	}), nil
}

func scopeOrRoot(scope string) string {
	if strings.Trim(scope, "/") == "" {
		return "/"
	}
	return scope
}

func sameScope(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(scopeOrRoot(a), "/"), strings.TrimRight(scopeOrRoot(b), "/"))
}

// RoleDefinitionFilter is a parsed $filter of a role definition list.
type RoleDefinitionFilter struct {
	RoleName string // roleName eq '...'
	Type     string // type eq 'BuiltInRole' | 'CustomRole'
}

// ParseRoleDefinitionFilter reads "roleName eq '...'" and "type eq '...'".
func ParseRoleDefinitionFilter(f string) (RoleDefinitionFilter, error) {
	var out RoleDefinitionFilter
	if strings.TrimSpace(f) == "" {
		return out, nil
	}
	for _, part := range splitAnd(strings.TrimSpace(f)) {
		p := strings.TrimSpace(part)
		lower := strings.ToLower(p)
		i := strings.Index(lower, " eq ")
		if i < 0 {
			return out, badFilter(f)
		}
		v := strings.TrimSpace(p[i+4:])
		if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			return out, badFilter(f)
		}
		v = v[1 : len(v)-1]
		switch strings.TrimSpace(lower[:i]) {
		case "rolename":
			out.RoleName = v
		case "type":
			out.Type = v
		default:
			return out, badFilter(f)
		}
	}
	return out, nil
}

// ListRoleDefinitions lists the roles usable at scope: every built-in role and the custom roles
// assignable at or below it.
func (s *Service) ListRoleDefinitions(ctx context.Context, scope string, f RoleDefinitionFilter) ([]rbac.RoleDefinition, error) {
	roles := s.opts.Roles
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleDefinitionRead, false, scopeOrRoot(scope)); err != nil {
		return nil, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return nil, err
	}
	var out []rbac.RoleDefinition
	for _, r := range roles.Roles() {
		if f.RoleName != "" && !strings.EqualFold(f.RoleName, r.Name) {
			continue
		}
		if f.Type != "" && !strings.EqualFold(f.Type, roleType(&r.Role)) {
			continue
		}
		if !r.BuiltIn && !visibleAt(&r.Role, scope) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func visibleAt(r *authz.Role, scope string) bool {
	for _, as := range r.AssignableScopes {
		if authz.ScopeContains(as, scope) || authz.ScopeContains(scope, as) {
			return true
		}
	}
	return false
}

func roleType(r *authz.Role) string {
	if r.BuiltIn {
		return "BuiltInRole"
	}
	return "CustomRole"
}

// RoleType is "BuiltInRole" or "CustomRole", as ARM spells them.
func RoleType(r *rbac.RoleDefinition) string { return roleType(&r.Role) }

func roleNotFound(id string) error {
	return newErr(ErrNotFound, "RoleDefinitionDoesNotExist", "", "The specified role definition with ID '%s' does not exist.", id)
}

// GetRoleDefinition returns one role definition.
func (s *Service) GetRoleDefinition(ctx context.Context, scope, id string) (rbac.RoleDefinition, error) {
	roles := s.opts.Roles
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleDefinitionRead, false, scopeOrRoot(scope)); err != nil {
		return rbac.RoleDefinition{}, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return rbac.RoleDefinition{}, err
	}
	g, ok := roleGUID(id)
	if !ok {
		return rbac.RoleDefinition{}, roleNotFound(id)
	}
	r, ok := roles.Role(g)
	if !ok {
		return rbac.RoleDefinition{}, roleNotFound(id)
	}
	return r, nil
}

// RoleDefinitionInput is the body of a custom role PUT.
type RoleDefinitionInput struct {
	RoleName         string
	Description      string
	Type             string
	Permissions      []authz.Permission
	AssignableScopes []string
}

// maxCustomRolePatterns bounds a custom role's action patterns (Azure's limit is far larger
// per tenant; per role it is practical, not contractual).
const maxCustomRolePatterns = 1000

// PutRoleDefinition creates or replaces the custom role id; created is true for a new one.
func (s *Service) PutRoleDefinition(ctx context.Context, scope, id string, in RoleDefinitionInput) (rbac.RoleDefinition, bool, error) {
	roles := s.opts.Roles
	if err := s.guard(ctx, actionRoleDefinitionWrite, false, scopeOrRoot(scope)); err != nil {
		return rbac.RoleDefinition{}, false, err // authorized first, so that refusals look alike
	}
	g, ok := roleGUID(id)
	if !ok || g != strings.ToLower(id) {
		return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidRoleDefinitionId", "", "The role definition ID '%s' is not valid. The role definition ID must be a GUID.", id)
	}
	if strings.TrimSpace(in.RoleName) == "" || len(in.RoleName) > 512 {
		return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidRoleDefinitionName", "", "The role definition name must be 1-512 characters.")
	}
	if in.Type != "" && !strings.EqualFold(in.Type, "CustomRole") {
		return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidRoleDefinitionType", "", "Only custom roles can be created; the type must be 'CustomRole'.")
	}
	if len(in.AssignableScopes) == 0 {
		return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidAssignableScopes", "", "A custom role needs at least one assignable scope.")
	}
	n := 0
	for _, p := range in.Permissions {
		n += len(p.Actions) + len(p.NotActions) + len(p.DataActions) + len(p.NotDataActions)
	}
	if n == 0 || n > maxCustomRolePatterns || len(in.Permissions) > 16 {
		return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidRolePermissions", "", "A custom role needs between 1 and %d action patterns.", maxCustomRolePatterns)
	}
	scopes := make([]string, 0, len(in.AssignableScopes))
	for _, as := range in.AssignableScopes {
		cs, err := s.scopeSyntax(as)
		if err != nil {
			return rbac.RoleDefinition{}, false, err
		}
		if err := s.guard(ctx, actionRoleDefinitionWrite, false, cs); err != nil {
			return rbac.RoleDefinition{}, false, err
		}
		scopes = append(scopes, cs)
	}
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleDefinitionWrite, false, scopeOrRoot(scope)); err != nil {
		return rbac.RoleDefinition{}, false, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return rbac.RoleDefinition{}, false, err
	}
	c, _ := CallerFrom(ctx)
	def, created, err := roles.PutRoleDefinition(ctx, rbac.RoleDefinition{Role: authz.Role{ID: g, Name: strings.TrimSpace(in.RoleName),
		Description: in.Description, Permissions: in.Permissions, AssignableScopes: scopes}}, c.ObjectID)
	switch {
	case errors.Is(err, rbac.ErrRoleNameExists):
		return def, false, newErr(ErrConflict, "RoleDefinitionWithSameNameExists", "", "A custom role with the same name already exists in this directory. Use a different name.")
	case errors.Is(err, rbac.ErrRoleBuiltIn):
		return def, false, newErr(ErrBadRequest, "RoleDefinitionIsBuiltIn", "", "Built-in role definitions cannot be changed.")
	}
	return def, created, err
}

// DeleteRoleDefinition removes a custom role nothing is assigned; found is false when there was
// none.
func (s *Service) DeleteRoleDefinition(ctx context.Context, scope, id string) (rbac.RoleDefinition, bool, error) {
	roles := s.opts.Roles
	// Authorized before the scope is checked, so that refusals look alike.
	if err := s.guard(ctx, actionRoleDefinitionDel, false, scopeOrRoot(scope)); err != nil {
		return rbac.RoleDefinition{}, false, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return rbac.RoleDefinition{}, false, err
	}
	g, ok := roleGUID(id)
	if !ok {
		return rbac.RoleDefinition{}, false, nil
	}
	def, found, err := roles.DeleteRoleDefinition(ctx, g)
	switch {
	case errors.Is(err, rbac.ErrRoleInUse):
		return def, true, newErr(ErrConflict, "RoleDefinitionHasAssignments", "", "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).")
	case errors.Is(err, rbac.ErrRoleBuiltIn):
		return def, true, newErr(ErrBadRequest, "RoleDefinitionIsBuiltIn", "", "Built-in role definitions cannot be deleted.")
	}
	return def, found, err
}
