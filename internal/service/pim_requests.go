package service

// Schedule requests of just-in-time elevation: roleEligibilityScheduleRequests (AdminAssign,
// AdminRemove), roleAssignmentScheduleRequests (SelfActivate, SelfDeactivate), and the approval,
// denial and cancellation of a request pending approval.

import (
	"context"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/rbac"
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
	req, err := s.assignmentRequestOf(ctx, c, scope, name, in)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	now := s.now().UTC()
	if strings.EqualFold(in.RequestType, "SelfDeactivate") {
		return s.selfDeactivate(ctx, req, now)
	}
	return s.selfActivate(ctx, req, in, now)
}

// assignmentRequestOf validates a roleAssignmentScheduleRequests PUT by c and returns the
// request it makes, its RequestType still unset: the principal must be the caller, the target
// valid, the request type SelfActivate or SelfDeactivate and the scope existing.
func (s *Service) assignmentRequestOf(ctx context.Context, c Caller, scope, name string, in ScheduleRequestInput) (rbac.ScheduleRequest, error) {
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
	return rbac.ScheduleRequest{Name: name, Scope: scope, RoleID: roleID, RoleName: roleName(roles, roleID), PrincipalID: principal, PrincipalType: ptype, RequestorID: c.ObjectID,
		Justification: strings.TrimSpace(in.Justification), TicketNumber: strings.TrimSpace(in.TicketNumber), TicketSystem: in.TicketSystem}, nil
}

// selfDeactivate ends the principal's activation of req's role at req's scope that grants now.
func (s *Service) selfDeactivate(ctx context.Context, req rbac.ScheduleRequest, now time.Time) (rbac.ScheduleRequest, error) {
	roles := s.opts.Roles
	req.RequestType = "SelfDeactivate"
	live := roles.Activations(func(a *rbac.Activation) bool {
		return sameScope(a.Scope, req.Scope) && a.RoleID == req.RoleID && strings.EqualFold(a.PrincipalID, req.PrincipalID)
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

// selfActivate activates req from the principal's eligibility under the effective policy: at
// once, or as a request pending approval when the policy requires one.
func (s *Service) selfActivate(ctx context.Context, req rbac.ScheduleRequest, in ScheduleRequestInput, now time.Time) (rbac.ScheduleRequest, error) {
	roles := s.opts.Roles
	req.RequestType = "SelfActivate"
	elig, ok := s.eligibilityFor(roles, req.PrincipalID, req.Scope, req.RoleID, in.LinkedRoleEligibilityScheduleID, now)
	if !ok {
		return rbac.ScheduleRequest{}, policyFailed("EligibilityRule", "The principal has no active eligibility for this role at this scope or above it.")
	}
	req.LinkedEligibility = elig.Name
	pol := roles.EffectivePolicy(req.Scope, req.RoleID)
	start, end, duration, err := s.window(in.Schedule, now)
	if err != nil {
		return rbac.ScheduleRequest{}, err
	}
	if err := activationPolicyErr(&pol, &req, start, end); err != nil {
		return rbac.ScheduleRequest{}, err
	}
	if !elig.EndsAt.IsZero() && !start.Before(elig.EndsAt) {
		return rbac.ScheduleRequest{}, policyFailed("EligibilityRule", "The activation would start after the eligibility ends.")
	}
	if err := pendingRequestErr(roles, &req, now); err != nil {
		return rbac.ScheduleRequest{}, err
	}
	req.StartsAt, req.EndsAt, req.Duration, req.ExpirationType = start, end, durationOr(duration, end.Sub(start)), "AfterDuration"
	if duration == "" {
		req.ExpirationType = "AfterDateTime"
	}
	recordGrant(ctx, elig.ID())
	if pol.ApprovalRequired {
		return s.submitForApproval(ctx, req, &pol, now)
	}
	out, _, err := roles.Activate(ctx, req, s.activationOf(&req, &elig, start, end))
	return out, s.pimStoreErr(err)
}

// activationPolicyErr is the refusal of an activation from start to end that breaks pol's
// expiration or enablement rules, or nil.
func activationPolicyErr(pol *rbac.Policy, req *rbac.ScheduleRequest, start, end time.Time) error {
	maxDur, perr := rbac.ParseISODuration(pol.ActivationMaximumDuration)
	switch {
	case end.IsZero():
		return policyFailed("ExpirationRule", "An activation must expire: ask for scheduleInfo.expiration of type AfterDuration.")
	case perr != nil || end.Sub(start) > maxDur:
		return policyFailed("ExpirationRule", "The requested duration is longer than the policy's maximum of "+pol.ActivationMaximumDuration+".")
	case pol.Requires(EnableJustification) && req.Justification == "":
		return policyFailed("JustificationRule", "The policy of this role requires a justification.")
	case pol.Requires(EnableTicketing) && req.TicketNumber == "":
		return policyFailed("TicketingRule", "The policy of this role requires ticketInfo.ticketNumber.")
	case pol.Requires(EnableMFA):
		// This server issues no MFA claim, so the rule cannot be met: fail closed.
		return policyFailed("MfaRule", "The policy of this role requires multi-factor authentication, which this server cannot verify.")
	}
	return nil
}

// pendingRequestErr refuses a second request while one of the principal's for the same role
// at the same scope still waits for approval.
func pendingRequestErr(roles *rbac.Service, req *rbac.ScheduleRequest, now time.Time) error {
	if pending := roles.Requests(func(r *rbac.ScheduleRequest) bool {
		return r.Status == rbac.StatusPendingApproval && now.Before(r.ApprovalDeadline) && strings.EqualFold(r.PrincipalID, req.PrincipalID) &&
			r.RoleID == req.RoleID && sameScope(r.Scope, req.Scope)
	}); len(pending) > 0 {
		return newErr(ErrConflict, "PendingRoleAssignmentRequest", "", "A request for this role at this scope is already pending approval: %s.", pending[0].Name)
	}
	return nil
}

// submitForApproval stores req as pending the approval of pol's approvers, within its timeout.
func (s *Service) submitForApproval(ctx context.Context, req rbac.ScheduleRequest, pol *rbac.Policy, now time.Time) (rbac.ScheduleRequest, error) {
	roles := s.opts.Roles
	if live := roles.ListAssignments(func(a *rbac.Assignment) bool {
		return sameScope(a.Scope, req.Scope) && a.RoleID == req.RoleID && strings.EqualFold(a.PrincipalID, req.PrincipalID) && (a.EndsAt.IsZero() || now.Before(a.EndsAt))
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
