package service

// Reads of just-in-time elevation: the $filter of the lists, whose records a caller may see, and
// the lists and reads of schedule requests, eligibilities and activations.

import (
	"context"
	"strings"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
)

// PIMFilter is a parsed $filter of a PIM list.
type PIMFilter struct {
	AsTarget         bool   // asTarget(): the caller's own (and its groups')
	AsApprover       bool   // asApprover(): requests the caller may approve
	AtScope          bool   // atScope(): at the scope or above it only
	PrincipalID      string // principalId eq '...'
	RoleDefinitionID string // roleDefinitionId eq '...' (an id or a GUID)
	Status           string // status eq '...'
}

// ParsePIMFilter reads the $filter forms of the PIM lists, alone or joined by "and".
func ParsePIMFilter(f string) (PIMFilter, error) {
	var out PIMFilter
	f = strings.TrimSpace(f)
	if f == "" {
		return out, nil
	}
	for _, part := range splitAnd(f) {
		p := strings.TrimSpace(part)
		switch lower := strings.ToLower(strings.ReplaceAll(p, " ", "")); {
		case lower == "astarget()":
			out.AsTarget = true
		case lower == "asapprover()":
			out.AsApprover = true
		case lower == "atscope()":
			out.AtScope = true
		default:
			fields := strings.Fields(p)
			if len(fields) == 0 {
				return out, badFilter(f)
			}
			v, ok := quotedAfter(p, "eq")
			if !ok {
				return out, badFilter(f)
			}
			switch strings.ToLower(fields[0]) {
			case "principalid":
				out.PrincipalID = v
			case "roledefinitionid":
				g, ok := roleGUID(v)
				if !ok {
					return out, badFilter(f)
				}
				out.RoleDefinitionID = g
			case "status":
				out.Status = v
			default:
				return out, badFilter(f)
			}
		}
	}
	return out, nil
}

// pimVisibility decides whose records a list or read may show: the caller's own (and its
// groups') need nothing more than authentication; anything else needs roleAssignments/read at
// scope. principals is nil when every principal's may be shown.
func (s *Service) pimVisibility(ctx context.Context, scope string, f PIMFilter) (principals []string, err error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return nil, err
	}
	own := s.principalsOf(c.ObjectID)
	want := strings.ToLower(f.PrincipalID)
	switch {
	case f.AsTarget && want != "" && !containsFold(own, want):
		return []string{}, nil // asTarget() and someone else's id: nothing
	case f.AsTarget && want == "":
		return own, nil
	case want != "" && containsFold(own, want):
		return []string{want}, nil
	}
	if err := s.guard(ctx, actionRoleAssignmentRead, false, scope); err != nil {
		return nil, err
	}
	if want != "" {
		return []string{want}, nil
	}
	return nil, nil
}

// pimMatch is the scope, principal and role part of a list filter.
func pimMatch(scope string, f PIMFilter, principals []string, recScope, recRole, recPrincipal string) bool {
	related := authz.ScopeContains(recScope, scope) || !f.AtScope && authz.ScopeContains(scope, recScope)
	return related && (principals == nil || containsFold(principals, recPrincipal)) && (f.RoleDefinitionID == "" || f.RoleDefinitionID == recRole)
}

// ListRoleEligibilitySchedules lists the eligibilities that have not expired at, above and
// (unless atScope()) below scope.
func (s *Service) ListRoleEligibilitySchedules(ctx context.Context, scope string, f PIMFilter) ([]rbac.Eligibility, error) {
	roles, scope, principals, err := s.pimList(ctx, scope, f)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return roles.Eligibilities(func(e *rbac.Eligibility) bool {
		return (e.EndsAt.IsZero() || now.Before(e.EndsAt)) && pimMatch(scope, f, principals, e.Scope, e.RoleID, e.PrincipalID)
	}), nil
}

func (s *Service) pimList(ctx context.Context, scope string, f PIMFilter) (*rbac.Service, string, []string, error) {
	if _, err := pimCaller(ctx); err != nil {
		return nil, "", nil, err
	}
	principals, err := s.pimVisibility(ctx, scopeOrRoot(scope), f)
	if err != nil {
		return nil, "", nil, err
	}
	scope, err = s.scopeSyntax(scope)
	return s.opts.Roles, scope, principals, err
}

// GetRoleEligibilitySchedule returns the named eligibility at scope.
func (s *Service) GetRoleEligibilitySchedule(ctx context.Context, scope, name string) (rbac.Eligibility, error) {
	list, err := s.ListRoleEligibilitySchedules(ctx, scope, s.ownOrAll(ctx, func(principal string) bool {
		e, ok := s.opts.Roles.Eligibility(name)
		return ok && strings.EqualFold(e.PrincipalID, principal)
	}))
	for _, e := range list {
		if e.Name == strings.ToLower(name) && sameScope(e.Scope, scope) {
			return e, nil
		}
	}
	if err != nil {
		return rbac.Eligibility{}, err
	}
	return rbac.Eligibility{}, newErr(ErrNotFound, "RoleEligibilityScheduleNotFound", "", "The role eligibility schedule '%s' is not found.", name)
}

// ownOrAll is the filter a read of one record uses: the caller's own (asTarget) when owns says
// the record is the caller's or one of its groups', else every principal's.
func (s *Service) ownOrAll(ctx context.Context, owns func(principal string) bool) PIMFilter {
	c, ok := CallerFrom(ctx)
	if !ok || s.opts.Roles == nil {
		return PIMFilter{AtScope: true}
	}
	for _, p := range s.principalsOf(c.ObjectID) {
		if owns(p) {
			return PIMFilter{AsTarget: true, AtScope: true}
		}
	}
	return PIMFilter{AtScope: true}
}

// ListScheduleRequests lists the requests of kind (rbac.RequestEligibility or
// rbac.RequestAssignment) at, above and (unless atScope()) below scope; asApprover() lists the
// pending ones the caller may approve.
func (s *Service) ListScheduleRequests(ctx context.Context, kind, scope string, f PIMFilter) ([]rbac.ScheduleRequest, error) {
	if f.AsApprover {
		c, err := pimCaller(ctx)
		if err != nil {
			return nil, err
		}
		if scope, err = s.scopeSyntax(scope); err != nil {
			return nil, err
		}
		return s.opts.Roles.Requests(func(r *rbac.ScheduleRequest) bool {
			if r.Kind != kind || r.Status != rbac.StatusPendingApproval || strings.EqualFold(r.RequestorID, c.ObjectID) || !pimMatch(scope, f, nil, r.Scope, r.RoleID, r.PrincipalID) {
				return false
			}
			if len(r.Approvers) > 0 {
				return s.approverOf(r, c.ObjectID)
			}
			return s.opts.Authorizer.Decide(authz.Request{PrincipalID: c.ObjectID, Groups: s.groupsOf(c.ObjectID),
				Action: authz.ActionRoleAssignmentWrite, Scope: r.Scope, TargetRole: r.RoleID}).Allowed
		}), nil
	}
	roles, scope, principals, err := s.pimList(ctx, scope, f)
	if err != nil {
		return nil, err
	}
	return roles.Requests(func(r *rbac.ScheduleRequest) bool {
		own := principals == nil || containsFold(principals, r.PrincipalID) || containsFold(principals, r.RequestorID)
		return r.Kind == kind && own && pimMatch(scope, f, nil, r.Scope, r.RoleID, r.PrincipalID) && (f.Status == "" || strings.EqualFold(f.Status, r.Status))
	}), nil
}

// GetScheduleRequest returns the named request of kind at scope: the caller's own requests,
// those it may approve, or any with roleAssignments/read at scope.
func (s *Service) GetScheduleRequest(ctx context.Context, kind, scope, name string) (rbac.ScheduleRequest, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	roles := s.opts.Roles
	r, err := s.pimRequest(roles, kind, scope, name)
	mine := err == nil && (strings.EqualFold(r.RequestorID, c.ObjectID) || containsFold(s.principalsOf(c.ObjectID), r.PrincipalID) || s.approverOf(&r, c.ObjectID))
	if !mine {
		if gerr := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); gerr != nil {
			return rbac.ScheduleRequest{}, gerr
		}
	}
	return r, err
}

// ListRoleAssignmentSchedules lists the activations that still grant (or will) at, above and
// (unless atScope()) below scope.
func (s *Service) ListRoleAssignmentSchedules(ctx context.Context, scope string, f PIMFilter) ([]rbac.Activation, error) {
	roles, scope, principals, err := s.pimList(ctx, scope, f)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return roles.Activations(func(a *rbac.Activation) bool {
		return now.Before(a.EndsAt) && pimMatch(scope, f, principals, a.Scope, a.RoleID, a.PrincipalID)
	}), nil
}

// GetRoleAssignmentSchedule returns the named activation at scope while it grants.
func (s *Service) GetRoleAssignmentSchedule(ctx context.Context, scope, name string) (rbac.Activation, error) {
	list, err := s.ListRoleAssignmentSchedules(ctx, scope, s.ownOrAll(ctx, func(principal string) bool {
		a, ok := s.opts.Roles.Activation(name)
		return ok && strings.EqualFold(a.PrincipalID, principal)
	}))
	for _, a := range list {
		if a.Name == strings.ToLower(name) && sameScope(a.Scope, scope) && a.Granting {
			return a, nil
		}
	}
	if err != nil {
		return rbac.Activation{}, err
	}
	return rbac.Activation{}, newErr(ErrNotFound, "RoleAssignmentScheduleNotFound", "", "The role assignment schedule '%s' is not found.", name)
}
