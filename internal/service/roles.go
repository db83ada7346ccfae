// Role assignments (Microsoft.Authorization/roleAssignments) and their scopes: validation,
// authorization through guard, and Azure's error codes; the rbac package stores and indexes them.
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
	a, ok := roles.Assignment(name) // memory only: which role the delete is of decides who may
	if !ok || !sameScope(a.Scope, scope) {
		// Nothing to delete: learning that takes only the right to read the scope's assignments.
		if err := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); err != nil {
			return rbac.Assignment{}, false, err
		}
		_, err := s.scopeSyntax(scope)
		return rbac.Assignment{}, false, err
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
