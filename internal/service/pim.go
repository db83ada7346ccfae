// Just-in-time elevation (Privileged Identity Management for Azure resources, ARM api-version
// 2020-10-01): eligibilities made by administrators, activations their principals make for
// themselves, per-(scope, role) policies and approvals. These files validate, authorize and
// decide; the rbac package stores and indexes (rbac/pim*.go). This file holds what they share
// (the caller, the target, the schedule window, the mapping of rbac's errors); the rest is split
// by job:
//
//	pim_requests.go  eligibility and assignment schedule requests, approvals and cancellations
//	pim_lists.go     $filter, visibility, and the lists and reads of requests and schedules
//	pim_policy.go    role management policies: reading and changing their rules
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

	"github.com/strongroom/strongroom/internal/rbac"
)

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

func roleName(roles *rbac.Service, id string) string {
	r, _ := roles.Role(id)
	return r.Name
}
