// Role definitions (Microsoft.Authorization/roleDefinitions): the built-in ones and custom
// roles, validated and authorized through guard; the rbac package stores them.

package service

import (
	"context"
	"errors"
	"strings"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
)

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
	for _, p := range in.Permissions {
		for _, a := range append(append([]string{}, p.Actions...), p.DataActions...) {
			if authz.IsOperatorAction(a) || len(a) > 512 {
				return rbac.RoleDefinition{}, false, newErr(ErrBadRequest, "InvalidActionOrNotAction", "", "The action '%s' is not allowed in a custom role: the server's operator actions belong to its Strongroom Operator role.", echo(a))
			}
		}
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
	if old, ok := roles.Role(g); ok && !old.BuiltIn {
		if err := s.mayRewriteRole(ctx, roles, old, scopes); err != nil {
			return rbac.RoleDefinition{}, false, err
		}
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

// mayRewriteRole authorizes replacing custom role old: the writer must hold
// roleDefinitions/write at each scope the role was assignable at (or a scope-limited Owner could
// widen a role held elsewhere), and no assignment, eligibility or activation of it may fall
// outside the new assignable scopes.
func (s *Service) mayRewriteRole(ctx context.Context, roles *rbac.Service, old rbac.RoleDefinition, scopes []string) error {
	for _, as := range old.AssignableScopes {
		if err := s.guard(ctx, actionRoleDefinitionWrite, false, as); err != nil {
			return err
		}
	}
	within := func(scope string) bool {
		for _, as := range scopes {
			if authz.ScopeContains(as, scope) {
				return true
			}
		}
		return false
	}
	outside := len(roles.ListAssignments(func(a *rbac.Assignment) bool { return !a.BuiltIn && a.RoleID == old.ID && !within(a.Scope) })) +
		len(roles.Eligibilities(func(e *rbac.Eligibility) bool { return e.RoleID == old.ID && !within(e.Scope) }))
	if outside > 0 {
		return newErr(ErrConflict, "RoleDefinitionHasAssignments", "", "The role definition has assignments or eligibilities outside the new assignable scopes; remove them first.")
	}
	return nil
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
	if old, ok := roles.Role(g); ok && !old.BuiltIn {
		// The role is deleted wherever it was assignable: that is where its deleter needs the right.
		for _, as := range old.AssignableScopes {
			if err := s.guard(ctx, actionRoleDefinitionDel, false, as); err != nil {
				return rbac.RoleDefinition{}, false, err
			}
		}
		if len(roles.Eligibilities(func(e *rbac.Eligibility) bool { return e.RoleID == g })) > 0 {
			return old, true, newErr(ErrConflict, "RoleDefinitionHasAssignments", "", "There are existing role eligibilities referencing role (code: RoleDefinitionHasAssignments).")
		}
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

// echo bounds a caller-supplied string in a message.
func echo(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
