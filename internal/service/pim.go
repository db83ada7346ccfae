// Just-in-time elevation (Privileged Identity Management for Azure resources, ARM api-version
// 2020-10-01): eligibilities made by administrators, activations their principals make for
// themselves, per-(scope, role) policies and approvals. This file validates, authorizes and
// decides; the rbac package stores and indexes (rbac/pim.go).
//
// Authorization: eligibility requests are role assignment writes (guardRoleWrite with the
// target role, like a role assignment PUT); an activation is authorized by the caller's own
// active eligibility (direct or through a group) at the scope or above, under the effective
// policy; an approval by the policy's primary approvers (or, when it names none, by whoever may
// write assignments of the role at the scope), never by the requestor. Lists filtered by
// asTarget() or asApprover() show the caller's own records; other reads need
// roleAssignments/read at the scope.

package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
)

// The Microsoft.Authorization actions of role management policies.
const (
	actionPolicyRead  = "Microsoft.Authorization/roleManagementPolicies/read"
	actionPolicyWrite = "Microsoft.Authorization/roleManagementPolicies/write"
)

// Rule ids of the role management policy rules this server enforces.
const (
	RuleExpirationAdminEligibility = "Expiration_Admin_Eligibility"
	RuleExpirationEndUser          = "Expiration_EndUser_Assignment"
	RuleEnablementEndUser          = "Enablement_EndUser_Assignment"
	RuleApprovalEndUser            = "Approval_EndUser_Assignment"
)

// Enablement rules.
const (
	EnableJustification = "Justification"
	EnableTicketing     = "Ticketing"
	EnableMFA           = "MultiFactorAuthentication"
)

// ScheduleInfo is a request's scheduleInfo.
type ScheduleInfo struct {
	StartDateTime  *time.Time
	ExpirationType string // AfterDuration, AfterDateTime or NoExpiration; "" infers it
	Duration       string // ISO 8601 (PT8H, P365D)
	EndDateTime    *time.Time
}

// ScheduleRequestInput is the body of a roleEligibilityScheduleRequests or
// roleAssignmentScheduleRequests PUT.
type ScheduleRequestInput struct {
	PrincipalID      string
	RoleDefinitionID string
	RequestType      string
	Justification    string
	TicketNumber     string
	TicketSystem     string
	// LinkedRoleEligibilityScheduleID names the eligibility an activation uses (an id or a
	// name); empty finds the caller's.
	LinkedRoleEligibilityScheduleID string
	Schedule                        ScheduleInfo
	Condition                       string
	ConditionVersion                string
}

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

// pimCaller is the authenticated caller, or guard's refusal of a request without one.
func pimCaller(ctx context.Context) (Caller, error) {
	c, ok := CallerFrom(ctx)
	if !ok || c.ObjectID == "" {
		return Caller{}, newErr(ErrForbidden, "Forbidden", "AccessDenied", "request has no authenticated caller")
	}
	return c, nil
}

// recordGrant puts an allow that did not come from authz (an eligibility, a policy's approver)
// in the audit record of the request.
func recordGrant(ctx context.Context, id string) {
	if slot := DecisionFrom(ctx); slot != nil {
		slot.Allowed, slot.AssignmentID = true, id
	}
}

func policyFailed(rule, detail string) error {
	return newErr(ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "", "The following policy rules failed: [\"%s\"]. %s", rule, detail)
}

// pimTarget validates the (scope, role, principal) of a request.
func (s *Service) pimTarget(roles *rbac.Service, name, scope, roleDefinitionID, principalID string) (scopeRef, string, string, error) {
	if _, err := uuid.Parse(name); err != nil || len(name) != 36 {
		return scopeRef{}, "", "", newErr(ErrBadRequest, "InvalidRequestId", "", "The request ID '%s' is not valid. The request ID must be a GUID.", name)
	}
	ref, err := s.parseScope(scope)
	if err != nil {
		return scopeRef{}, "", "", err
	}
	roleID, ok := roleGUID(roleDefinitionID)
	if !ok {
		return scopeRef{}, "", "", newErr(ErrBadRequest, "InvalidRoleDefinitionId", "", "The role definition ID '%s' is not valid.", roleDefinitionID)
	}
	role, ok := roles.Role(roleID)
	if !ok {
		return scopeRef{}, "", "", newErr(ErrBadRequest, "RoleDefinitionDoesNotExist", "", "The specified role definition with ID '%s' does not exist.", roleID)
	}
	if !assignableAt(&role.Role, ref.canonical) {
		return scopeRef{}, "", "", newErr(ErrBadRequest, "InvalidRoleAssignmentScope", "", "The role definition '%s' is not assignable at scope '%s'.", role.Name, ref.canonical)
	}
	p, err := uuid.Parse(principalID)
	if err != nil || len(principalID) != 36 {
		return scopeRef{}, "", "", newErr(ErrBadRequest, "InvalidPrincipalId", "", "A valid principal ID must be provided.")
	}
	return ref, roleID, p.String(), nil
}

// window turns a scheduleInfo into a start and an end (zero: no expiration).
func (s *Service) window(in ScheduleInfo, now time.Time) (start, end time.Time, duration string, err error) {
	start = now
	if in.StartDateTime != nil && !in.StartDateTime.IsZero() {
		start = in.StartDateTime.UTC()
		if start.Before(now) {
			start = now // a start in the past begins now, as PIM does
		}
	}
	typ := in.ExpirationType
	if typ == "" {
		switch {
		case in.Duration != "":
			typ = "AfterDuration"
		case in.EndDateTime != nil:
			typ = "AfterDateTime"
		default:
			typ = "NoExpiration"
		}
	}
	switch {
	case strings.EqualFold(typ, "AfterDuration"):
		d, perr := rbac.ParseISODuration(in.Duration)
		if perr != nil || d <= 0 {
			return start, end, "", newErr(ErrBadRequest, "InvalidScheduleInfo", "", "scheduleInfo.expiration.duration must be a positive ISO 8601 duration such as PT8H or P365D.")
		}
		return start, start.Add(d), in.Duration, nil
	case strings.EqualFold(typ, "AfterDateTime"):
		if in.EndDateTime == nil || !in.EndDateTime.After(start) {
			return start, end, "", newErr(ErrBadRequest, "InvalidScheduleInfo", "", "scheduleInfo.expiration.endDateTime must be after the start.")
		}
		return start, in.EndDateTime.UTC(), "", nil
	case strings.EqualFold(typ, "NoExpiration"):
		return start, time.Time{}, "", nil
	}
	return start, end, "", newErr(ErrBadRequest, "InvalidScheduleInfo", "", "scheduleInfo.expiration.type '%s' is not valid: use AfterDuration, AfterDateTime or NoExpiration.", typ)
}

func expirationType(end time.Time, duration string) string {
	switch {
	case end.IsZero():
		return "NoExpiration"
	case duration != "":
		return "AfterDuration"
	}
	return "AfterDateTime"
}

// RequestRoleEligibility serves a roleEligibilityScheduleRequests PUT: AdminAssign makes
// in.PrincipalID eligible for the role at scope; AdminRemove ends that eligibility and every
// activation made from it. Both are authorized as role assignment writes of the role at scope.
func (s *Service) RequestRoleEligibility(ctx context.Context, scope, name string, in ScheduleRequestInput) (rbac.ScheduleRequest, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	roles := s.opts.Roles
	action := authz.ActionRoleAssignmentWrite
	if strings.EqualFold(in.RequestType, "AdminRemove") {
		action = authz.ActionRoleAssignmentDelete
	}
	target, _ := roleGUID(in.RoleDefinitionID)
	if err := s.guardRoleWrite(ctx, action, scopeOrRoot(scope), target); err != nil {
		return rbac.ScheduleRequest{}, err // authorized first, so that refusals look alike
	}
	ref, roleID, principal, err := s.pimTarget(roles, name, scope, in.RoleDefinitionID, in.PrincipalID)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	scope, name = ref.canonical, strings.ToLower(name)
	if in.Condition != "" || in.ConditionVersion != "" {
		return rbac.ScheduleRequest{}, newErr(ErrBadRequest, "ConditionNotSupported", "", "Role assignment conditions are not supported by this server.")
	}
	if !strings.EqualFold(in.RequestType, "AdminAssign") && !strings.EqualFold(in.RequestType, "AdminRemove") {
		return rbac.ScheduleRequest{}, newErr(ErrBadRequest, "InvalidRequestType", "", "The request type '%s' is not supported for role eligibility schedule requests: use AdminAssign or AdminRemove.", in.RequestType)
	}
	if err := s.guardRoleWrite(ctx, action, scope, roleID); err != nil {
		return rbac.ScheduleRequest{}, err // again at the canonical scope
	}
	if err := s.exists(ctx, ref); err != nil {
		return rbac.ScheduleRequest{}, err
	}
	req := rbac.ScheduleRequest{Name: name, Scope: scope, RoleID: roleID, RoleName: roleName(roles, roleID), PrincipalID: principal, RequestorID: c.ObjectID,
		Justification: in.Justification, TicketNumber: in.TicketNumber, TicketSystem: in.TicketSystem}
	if strings.EqualFold(in.RequestType, "AdminRemove") {
		req.RequestType = "AdminRemove"
		live := roles.Eligibilities(func(e *rbac.Eligibility) bool {
			return sameScope(e.Scope, scope) && e.RoleID == roleID && strings.EqualFold(e.PrincipalID, principal)
		})
		if len(live) == 0 {
			return rbac.ScheduleRequest{}, newErr(ErrNotFound, "RoleAssignmentDoesNotExist", "", "The role eligibility schedule does not exist.")
		}
		req.PrincipalType = live[0].PrincipalType
		out, err := roles.RemoveEligibility(ctx, req, live[0].Name)
		return out, s.pimStoreErr(err)
	}
	req.RequestType = "AdminAssign"
	if req.PrincipalType, err = s.principalType(principal, ""); err != nil {
		return rbac.ScheduleRequest{}, err
	}
	now := s.now().UTC()
	start, end, duration, err := s.window(in.Schedule, now)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	pol := roles.EffectivePolicy(scope, roleID)
	if pol.EligibilityExpirationRequired {
		maxDur, perr := rbac.ParseISODuration(pol.EligibilityMaximumDuration)
		if end.IsZero() {
			return rbac.ScheduleRequest{}, policyFailed("ExpirationRule", "The policy of this role requires eligibilities to expire.")
		}
		if perr != nil || end.Sub(start) > maxDur {
			return rbac.ScheduleRequest{}, policyFailed("ExpirationRule", "The eligibility is longer than the policy's maximum of "+pol.EligibilityMaximumDuration+".")
		}
	}
	req.StartsAt, req.EndsAt, req.Duration, req.ExpirationType = start, end, duration, expirationType(end, duration)
	out, _, err := roles.AssignEligibility(ctx, req, rbac.Eligibility{Name: name, Scope: scope, RoleID: roleID, RoleName: req.RoleName, PrincipalID: principal,
		PrincipalType: req.PrincipalType, StartsAt: start, EndsAt: end, CreatedBy: c.ObjectID})
	return out, s.pimStoreErr(err)
}

// pimStoreErr maps the rbac package's errors to ARM's.
func (s *Service) pimStoreErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rbac.ErrRequestExists):
		return newErr(ErrConflict, "RoleAssignmentRequestExists", "", "A request with this ID already exists; use a new GUID for each request.")
	case errors.Is(err, rbac.ErrEligibilityExists), errors.Is(err, rbac.ErrAssignmentExists):
		return newErr(ErrConflict, "RoleAssignmentExists", "", "The Role assignment already exists.")
	case errors.Is(err, rbac.ErrRequestNotPending):
		return newErr(ErrConflict, "RequestNotPending", "", "The request is not pending approval.")
	case errors.Is(err, rbac.ErrNotFound):
		return newErr(ErrNotFound, "RoleAssignmentDoesNotExist", "", "The Role assignment does not exist.")
	}
	return err
}

// principalsOf is the caller and its groups.
func (s *Service) principalsOf(objectID string) []string {
	return append([]string{strings.ToLower(objectID)}, s.groupsOf(objectID)...)
}

// eligibilityFor finds the caller's eligibility that may activate roleID at scope: the linked
// one when named, else the caller's own before a group's, the longest-lasting first.
func (s *Service) eligibilityFor(roles *rbac.Service, caller, scope, roleID, linked string, now time.Time) (rbac.Eligibility, bool) {
	principals := s.principalsOf(caller)
	if linked != "" {
		linked = strings.ToLower(linked[strings.LastIndex(linked, "/")+1:])
	}
	var best rbac.Eligibility
	found := false
	for _, e := range roles.Eligibilities(func(e *rbac.Eligibility) bool {
		return e.RoleID == roleID && e.ActiveAt(now) && authz.ScopeContains(e.Scope, scope) && containsFold(principals, e.PrincipalID) &&
			(linked == "" || e.Name == linked)
	}) {
		direct := strings.EqualFold(e.PrincipalID, caller)
		switch {
		case !found:
		case direct != strings.EqualFold(best.PrincipalID, caller):
			if !direct {
				continue
			}
		case best.EndsAt.IsZero() || !e.EndsAt.IsZero() && !e.EndsAt.After(best.EndsAt):
			continue
		}
		best, found = e, true
	}
	return best, found
}

// RequestRoleAssignment serves a roleAssignmentScheduleRequests PUT: SelfActivate turns the
// caller's eligibility into a time-bound role assignment (or a request pending approval, which
// grants nothing); SelfDeactivate ends the caller's activation early.
func (s *Service) RequestRoleAssignment(ctx context.Context, scope, name string, in ScheduleRequestInput) (rbac.ScheduleRequest, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	roles := s.opts.Roles
	if !strings.EqualFold(strings.TrimSpace(in.PrincipalID), c.ObjectID) {
		// The caller's own eligibility is what authorizes an activation: there is no one else's.
		return rbac.ScheduleRequest{}, newErr(ErrForbidden, "AuthorizationFailed", "",
			"The client '%s' with object id '%s' can only activate or deactivate its own roles; the request names principal '%s'.", c.AppID, c.ObjectID, in.PrincipalID)
	}
	ref, roleID, principal, err := s.pimTarget(roles, name, scope, in.RoleDefinitionID, in.PrincipalID)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	scope, name = ref.canonical, strings.ToLower(name)
	if in.Condition != "" || in.ConditionVersion != "" {
		return rbac.ScheduleRequest{}, newErr(ErrBadRequest, "ConditionNotSupported", "", "Role assignment conditions are not supported by this server.")
	}
	if !strings.EqualFold(in.RequestType, "SelfActivate") && !strings.EqualFold(in.RequestType, "SelfDeactivate") {
		return rbac.ScheduleRequest{}, newErr(ErrBadRequest, "InvalidRequestType", "", "The request type '%s' is not supported for role assignment schedule requests: use SelfActivate or SelfDeactivate (permanent assignments are roleAssignments).", in.RequestType)
	}
	if err := s.exists(ctx, ref); err != nil {
		return rbac.ScheduleRequest{}, err
	}
	ptype, err := s.principalType(principal, "")
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	now := s.now().UTC()
	req := rbac.ScheduleRequest{Name: name, Scope: scope, RoleID: roleID, RoleName: roleName(roles, roleID), PrincipalID: principal, PrincipalType: ptype, RequestorID: c.ObjectID,
		Justification: strings.TrimSpace(in.Justification), TicketNumber: strings.TrimSpace(in.TicketNumber), TicketSystem: in.TicketSystem}

	if strings.EqualFold(in.RequestType, "SelfDeactivate") {
		req.RequestType = "SelfDeactivate"
		live := roles.Activations(func(a *rbac.Activation) bool {
			return sameScope(a.Scope, scope) && a.RoleID == roleID && strings.EqualFold(a.PrincipalID, principal)
		})
		for _, a := range live {
			if a.Granting && now.Before(a.EndsAt) {
				recordGrant(ctx, a.ID())
				out, err := roles.Deactivate(ctx, req, a.Name)
				return out, s.pimStoreErr(err)
			}
		}
		return rbac.ScheduleRequest{}, newErr(ErrNotFound, "RoleAssignmentDoesNotExist", "", "The Role assignment does not exist: there is no active activation of this role at this scope.")
	}

	req.RequestType = "SelfActivate"
	elig, ok := s.eligibilityFor(roles, principal, scope, roleID, in.LinkedRoleEligibilityScheduleID, now)
	if !ok {
		return rbac.ScheduleRequest{}, policyFailed("EligibilityRule", "The principal has no active eligibility for this role at this scope or above it.")
	}
	req.LinkedEligibility = elig.Name
	pol := roles.EffectivePolicy(scope, roleID)
	start, end, duration, err := s.window(in.Schedule, now)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	maxDur, perr := rbac.ParseISODuration(pol.ActivationMaximumDuration)
	switch {
	case end.IsZero():
		return rbac.ScheduleRequest{}, policyFailed("ExpirationRule", "An activation must expire: ask for scheduleInfo.expiration of type AfterDuration.")
	case perr != nil || end.Sub(start) > maxDur:
		return rbac.ScheduleRequest{}, policyFailed("ExpirationRule", "The requested duration is longer than the policy's maximum of "+pol.ActivationMaximumDuration+".")
	case pol.Requires(EnableJustification) && req.Justification == "":
		return rbac.ScheduleRequest{}, policyFailed("JustificationRule", "The policy of this role requires a justification.")
	case pol.Requires(EnableTicketing) && req.TicketNumber == "":
		return rbac.ScheduleRequest{}, policyFailed("TicketingRule", "The policy of this role requires ticketInfo.ticketNumber.")
	case pol.Requires(EnableMFA):
		// This server issues no MFA claim, so the rule cannot be met: fail closed.
		return rbac.ScheduleRequest{}, policyFailed("MfaRule", "The policy of this role requires multi-factor authentication, which this server cannot verify.")
	}
	if !elig.EndsAt.IsZero() && !start.Before(elig.EndsAt) {
		return rbac.ScheduleRequest{}, policyFailed("EligibilityRule", "The activation would start after the eligibility ends.")
	}
	if pending := roles.Requests(func(r *rbac.ScheduleRequest) bool {
		return r.Status == rbac.StatusPendingApproval && now.Before(r.ApprovalDeadline) && strings.EqualFold(r.PrincipalID, principal) &&
			r.RoleID == roleID && sameScope(r.Scope, scope)
	}); len(pending) > 0 {
		return rbac.ScheduleRequest{}, newErr(ErrConflict, "PendingRoleAssignmentRequest", "", "A request for this role at this scope is already pending approval: %s.", pending[0].Name)
	}
	req.StartsAt, req.EndsAt, req.Duration, req.ExpirationType = start, end, durationOr(duration, end.Sub(start)), "AfterDuration"
	if duration == "" {
		req.ExpirationType = "AfterDateTime"
	}
	recordGrant(ctx, elig.ID())
	if pol.ApprovalRequired {
		if live := roles.ListAssignments(func(a *rbac.Assignment) bool {
			return sameScope(a.Scope, scope) && a.RoleID == roleID && strings.EqualFold(a.PrincipalID, principal) && (a.EndsAt.IsZero() || now.Before(a.EndsAt))
		}); len(live) > 0 {
			return rbac.ScheduleRequest{}, s.pimStoreErr(rbac.ErrAssignmentExists) // found now rather than at approval
		}
		req.Approvers = pol.Approvers
		days := pol.ApprovalTimeoutDays
		if days <= 0 {
			days = 1
		}
		req.ApprovalDeadline = now.Add(time.Duration(days) * 24 * time.Hour)
		out, err := roles.SubmitRequest(ctx, req)
		return out, s.pimStoreErr(err)
	}
	out, _, err := roles.Activate(ctx, req, s.activationOf(&req, &elig, start, end))
	return out, s.pimStoreErr(err)
}

// durationOr is d when it was given, else the ISO 8601 form of fallback.
func durationOr(d string, fallback time.Duration) string {
	if d != "" {
		return d
	}
	return rbac.FormatISODuration(fallback)
}

// activationOf is the activation req provisions from its eligibility, which it cannot outlast.
func (s *Service) activationOf(req *rbac.ScheduleRequest, elig *rbac.Eligibility, start, end time.Time) rbac.Activation {
	if !elig.EndsAt.IsZero() && elig.EndsAt.Before(end) {
		end = elig.EndsAt
	}
	member, via := "Direct", ""
	if !strings.EqualFold(elig.PrincipalID, req.PrincipalID) {
		member, via = "Group", elig.PrincipalID // it grants while the principal stays in the group
	}
	return rbac.Activation{ViaGroup: via, Name: req.Name, Scope: req.Scope, RoleID: req.RoleID, RoleName: req.RoleName, PrincipalID: req.PrincipalID, PrincipalType: req.PrincipalType,
		StartsAt: start, EndsAt: end, LinkedEligibility: elig.Name, MemberType: member, AssignmentType: "Activated", RequestName: req.Name}
}

// pimRequest finds the named request of kind at scope.
func (s *Service) pimRequest(roles *rbac.Service, kind, scope, name string) (rbac.ScheduleRequest, error) {
	r, ok := roles.Request(name)
	if !ok || r.Kind != kind || !sameScope(r.Scope, scope) {
		what := "RoleAssignmentScheduleRequest"
		if kind == rbac.RequestEligibility {
			what = "RoleEligibilityScheduleRequest"
		}
		return rbac.ScheduleRequest{}, newErr(ErrNotFound, what+"NotFound", "", "The %s '%s' is not found.", what, name)
	}
	return r, nil
}

// approverOf reports whether caller is one of r's approvers (directly or through a group).
func (s *Service) approverOf(r *rbac.ScheduleRequest, caller string) bool {
	principals := s.principalsOf(caller)
	for _, a := range r.Approvers {
		if containsFold(principals, a.ID) {
			return true
		}
	}
	return false
}

// ReviewRoleAssignmentRequest approves or denies a request pending approval (POST
// .../roleAssignmentScheduleRequests/{name}/approve or /deny; Azure does this through Graph).
// The caller must be one of the request's approvers (or, when the policy named none, hold
// roleAssignments/write for the role at the scope) and must not be its requestor. Approving
// provisions the activation from now for the duration asked for.
func (s *Service) ReviewRoleAssignmentRequest(ctx context.Context, scope, name string, approve bool, note string) (rbac.ScheduleRequest, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	roles := s.opts.Roles
	r, err := s.pimRequest(roles, rbac.RequestAssignment, scope, name)
	if err != nil {
		// Authorized like a review of nothing, so that absence is not an oracle to strangers.
		if gerr := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); gerr != nil {
			return rbac.ScheduleRequest{}, gerr
		}
		return rbac.ScheduleRequest{}, err
	}
	switch {
	case strings.EqualFold(c.ObjectID, r.RequestorID) || strings.EqualFold(c.ObjectID, r.PrincipalID):
		return rbac.ScheduleRequest{}, newErr(ErrForbidden, "AuthorizationFailed", "", "The client '%s' with object id '%s' requested this activation and cannot approve or deny it.", c.AppID, c.ObjectID)
	case len(r.Approvers) > 0:
		if !s.approverOf(&r, c.ObjectID) {
			return rbac.ScheduleRequest{}, newErr(ErrForbidden, "AuthorizationFailed", "", "The client '%s' with object id '%s' is not an approver of this request.", c.AppID, c.ObjectID)
		}
		recordGrant(ctx, rbac.PolicyName(r.Scope, r.RoleID))
	default:
		if err := s.guardRoleWrite(ctx, authz.ActionRoleAssignmentWrite, r.Scope, r.RoleID); err != nil {
			return rbac.ScheduleRequest{}, err
		}
	}
	if r.Status != rbac.StatusPendingApproval {
		return r, s.pimStoreErr(rbac.ErrRequestNotPending)
	}
	now := s.now().UTC()
	by := c.ObjectID
	if !r.ApprovalDeadline.IsZero() && !now.Before(r.ApprovalDeadline) {
		if _, _, err := roles.Review(ctx, r.Name, rbac.StatusTimedOut, by, "", nil); err != nil {
			return rbac.ScheduleRequest{}, s.pimStoreErr(err)
		}
		return rbac.ScheduleRequest{}, newErr(ErrConflict, "RequestTimedOut", "", "The request was not approved in time; the requestor must ask again.")
	}
	if !approve {
		out, _, err := roles.Review(ctx, r.Name, rbac.StatusDenied, by, note, nil)
		return out, s.pimStoreErr(err)
	}
	elig, ok := s.eligibilityFor(roles, r.PrincipalID, r.Scope, r.RoleID, r.LinkedEligibility, now)
	if !ok {
		return rbac.ScheduleRequest{}, policyFailed("EligibilityRule", "The requestor no longer holds an active eligibility for this role at this scope.")
	}
	d, perr := rbac.ParseISODuration(r.Duration)
	if perr != nil || d <= 0 {
		d = r.EndsAt.Sub(r.StartsAt)
	}
	start := now
	if r.StartsAt.After(now) {
		start = r.StartsAt
	}
	act := s.activationOf(&r, &elig, start, start.Add(d))
	out, _, err := roles.Review(ctx, r.Name, rbac.StatusProvisioned, by, note, &act)
	return out, s.pimStoreErr(err)
}

// CancelRoleAssignmentRequest cancels a request pending approval; only its requestor may.
func (s *Service) CancelRoleAssignmentRequest(ctx context.Context, scope, name string) (rbac.ScheduleRequest, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	roles := s.opts.Roles
	r, err := s.pimRequest(roles, rbac.RequestAssignment, scope, name)
	if err == nil && !strings.EqualFold(r.RequestorID, c.ObjectID) {
		err = newErr(ErrForbidden, "AuthorizationFailed", "", "The client '%s' with object id '%s' did not make this request and cannot cancel it.", c.AppID, c.ObjectID)
	}
	if err != nil {
		if gerr := s.guard(ctx, actionRoleAssignmentRead, false, scopeOrRoot(scope)); gerr != nil {
			return rbac.ScheduleRequest{}, gerr
		}
		return rbac.ScheduleRequest{}, err
	}
	out, _, err := roles.Review(ctx, r.Name, rbac.StatusCanceled, c.ObjectID, "", nil)
	return out, s.pimStoreErr(err)
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

// RolePolicy is a role management policy with the effective settings at its scope (the
// strictest of it and the policies of the role above it).
type RolePolicy struct {
	rbac.Policy
	RoleName  string
	Effective rbac.Policy
}

func roleName(roles *rbac.Service, id string) string {
	r, _ := roles.Role(id)
	return r.Name
}

// PolicyFilter is a parsed $filter of a role management policy list.
type PolicyFilter struct {
	RoleDefinitionID string // roleDefinitionId eq '...'
}

// ParsePolicyFilter reads "roleDefinitionId eq '...'".
func ParsePolicyFilter(f string) (PolicyFilter, error) {
	p, err := ParsePIMFilter(f)
	if err != nil || p.AsTarget || p.AsApprover || p.AtScope || p.PrincipalID != "" || p.Status != "" {
		return PolicyFilter{}, badFilter(f)
	}
	return PolicyFilter{RoleDefinitionID: p.RoleDefinitionID}, nil
}

func (s *Service) rolePolicy(roles *rbac.Service, scope, roleID string) RolePolicy {
	return RolePolicy{Policy: roles.Policy(scope, roleID), RoleName: roleName(roles, roleID), Effective: roles.EffectivePolicy(scope, roleID)}
}

// ListRoleManagementPolicies lists the policy of every role assignable at scope (the stored
// one or the defaults).
func (s *Service) ListRoleManagementPolicies(ctx context.Context, scope string, f PolicyFilter) ([]RolePolicy, error) {
	if _, err := pimCaller(ctx); err != nil {
		return nil, err
	}
	if err := s.guard(ctx, actionPolicyRead, false, scopeOrRoot(scope)); err != nil {
		return nil, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return nil, err
	}
	roles := s.opts.Roles
	var out []RolePolicy
	for _, r := range roles.Roles() {
		if (f.RoleDefinitionID == "" || f.RoleDefinitionID == r.ID) && assignableAt(&r.Role, scope) {
			out = append(out, s.rolePolicy(roles, scope, r.ID))
		}
	}
	return out, nil
}

// policyRole finds the role whose policy at scope is named name.
func (s *Service) policyRole(roles *rbac.Service, scope, name string) (string, error) {
	if g, ok := roleGUID(name); ok {
		if _, known := roles.Role(g); known {
			return g, nil // a role id names its policy too: handy for the CLI
		}
	}
	for _, r := range roles.Roles() {
		if rbac.PolicyName(scope, r.ID) == strings.ToLower(name) {
			return r.ID, nil
		}
	}
	return "", newErr(ErrNotFound, "RoleManagementPolicyNotFound", "", "The role management policy '%s' is not found at scope '%s'.", name, scope)
}

// GetRoleManagementPolicy returns the named policy at scope.
func (s *Service) GetRoleManagementPolicy(ctx context.Context, scope, name string) (RolePolicy, error) {
	if _, err := pimCaller(ctx); err != nil {
		return RolePolicy{}, err
	}
	if err := s.guard(ctx, actionPolicyRead, false, scopeOrRoot(scope)); err != nil {
		return RolePolicy{}, err
	}
	scope, err := s.scopeSyntax(scope)
	if err != nil {
		return RolePolicy{}, err
	}
	roles := s.opts.Roles
	roleID, err := s.policyRole(roles, scope, name)
	if err != nil {
		return RolePolicy{}, err
	}
	return s.rolePolicy(roles, scope, roleID), nil
}

// PolicyRuleInput is one rule of a role management policy PATCH; nil fields are unchanged.
type PolicyRuleInput struct {
	ID                   string
	IsExpirationRequired *bool
	MaximumDuration      *string
	EnabledRules         *[]string
	IsApprovalRequired   *bool
	ApprovalTimeoutDays  *int
	Approvers            *[]rbac.Approver
	ApprovalStages       int // how many stages the rule named (one is supported)
}

// UpdateRoleManagementPolicy changes the rules named in rules of the policy name at scope,
// under roleManagementPolicies/write. Notification rules are accepted and ignored (this server
// sends no mail); multi-factor authentication cannot be required, since no token it issues
// proves it.
func (s *Service) UpdateRoleManagementPolicy(ctx context.Context, scope, name string, rules []PolicyRuleInput) (RolePolicy, error) {
	c, err := pimCaller(ctx)
	if err != nil {
		return RolePolicy{}, err
	}
	if err := s.guard(ctx, actionPolicyWrite, false, scopeOrRoot(scope)); err != nil {
		return RolePolicy{}, err
	}
	scope, err = s.scopeSyntax(scope)
	if err != nil {
		return RolePolicy{}, err
	}
	roles := s.opts.Roles
	roleID, err := s.policyRole(roles, scope, name)
	if err != nil {
		return RolePolicy{}, err
	}
	p := roles.Policy(scope, roleID)
	invalid := func(format string, args ...any) (RolePolicy, error) {
		return RolePolicy{}, newErr(ErrBadRequest, "InvalidRoleManagementPolicyRule", "", format, args...)
	}
	for _, r := range rules {
		switch {
		case strings.EqualFold(r.ID, RuleExpirationAdminEligibility), strings.EqualFold(r.ID, RuleExpirationEndUser):
			if r.MaximumDuration != nil {
				d, err := rbac.ParseISODuration(*r.MaximumDuration)
				if err != nil || d < 5*time.Minute {
					return invalid("Rule '%s': maximumDuration '%s' must be an ISO 8601 duration of at least PT5M.", r.ID, *r.MaximumDuration)
				}
				if strings.EqualFold(r.ID, RuleExpirationEndUser) && d > 24*time.Hour {
					return invalid("Rule '%s': an activation lasts at most PT24H.", r.ID)
				}
			}
			if strings.EqualFold(r.ID, RuleExpirationEndUser) {
				if r.IsExpirationRequired != nil && !*r.IsExpirationRequired {
					return invalid("Rule '%s': activations always expire.", r.ID)
				}
				if r.MaximumDuration != nil {
					p.ActivationMaximumDuration = *r.MaximumDuration
				}
				continue
			}
			if r.IsExpirationRequired != nil {
				p.EligibilityExpirationRequired = *r.IsExpirationRequired
			}
			if r.MaximumDuration != nil {
				p.EligibilityMaximumDuration = *r.MaximumDuration
			}
		case strings.EqualFold(r.ID, RuleEnablementEndUser):
			if r.EnabledRules == nil {
				continue
			}
			var enabled []string
			for _, e := range *r.EnabledRules {
				switch {
				case strings.EqualFold(e, EnableJustification):
					enabled = append(enabled, EnableJustification)
				case strings.EqualFold(e, EnableTicketing):
					enabled = append(enabled, EnableTicketing)
				case strings.EqualFold(e, EnableMFA):
					return RolePolicy{}, newErr(ErrBadRequest, "MultiFactorAuthenticationNotSupported", "",
						"Rule '%s': this server cannot verify multi-factor authentication, so it cannot be required on activation.", r.ID)
				default:
					return invalid("Rule '%s': enabled rule '%s' is not one of Justification, Ticketing, MultiFactorAuthentication.", r.ID, e)
				}
			}
			p.EnabledRules = enabled
		case strings.EqualFold(r.ID, RuleApprovalEndUser):
			if r.ApprovalStages > 1 {
				return invalid("Rule '%s': only one approval stage is supported.", r.ID)
			}
			if r.IsApprovalRequired != nil {
				p.ApprovalRequired = *r.IsApprovalRequired
			}
			if r.ApprovalTimeoutDays != nil {
				if *r.ApprovalTimeoutDays < 1 || *r.ApprovalTimeoutDays > 30 {
					return invalid("Rule '%s': approvalStageTimeOutInDays must be between 1 and 30.", r.ID)
				}
				p.ApprovalTimeoutDays = *r.ApprovalTimeoutDays
			}
			if r.Approvers != nil {
				if len(*r.Approvers) > 50 {
					return invalid("Rule '%s': at most 50 primary approvers.", r.ID)
				}
				var approvers []rbac.Approver
				for _, a := range *r.Approvers {
					id, err := uuid.Parse(a.ID)
					if err != nil || len(a.ID) != 36 {
						return invalid("Rule '%s': approver id '%s' is not a GUID.", r.ID, a.ID)
					}
					typ := "User"
					switch {
					case a.UserType == "", strings.EqualFold(a.UserType, "User"):
					case strings.EqualFold(a.UserType, "Group"):
						typ = "Group"
					default:
						return invalid("Rule '%s': approver userType '%s' is not User or Group.", r.ID, a.UserType)
					}
					if s.opts.PrincipalTypes != nil {
						if _, ok := s.opts.PrincipalTypes(id.String()); !ok {
							return RolePolicy{}, newErr(ErrBadRequest, "PrincipalNotFound", "", "Approver %s does not exist in the directory %s.", id, s.opts.TenantID)
						}
					}
					approvers = append(approvers, rbac.Approver{ID: id.String(), UserType: typ, Description: a.Description})
				}
				p.Approvers = approvers
			}
		case strings.HasPrefix(strings.ToLower(r.ID), "notification_"):
			// Accepted and ignored: this server sends no notifications.
		default:
			return invalid("Rule '%s' is not supported; this server enforces %s, %s, %s and %s.", r.ID,
				RuleExpirationAdminEligibility, RuleExpirationEndUser, RuleEnablementEndUser, RuleApprovalEndUser)
		}
	}
	if _, err := roles.PutPolicy(ctx, p, c.ObjectID); err != nil {
		return RolePolicy{}, err
	}
	return s.rolePolicy(roles, scope, roleID), nil
}
