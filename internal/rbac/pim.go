package rbac

// Just-in-time elevation (Privileged Identity Management for Azure resources): eligibilities,
// schedule requests, activations and per-(scope, role) policies. Like the rest of the package
// these files store and index; the service package validates, authorizes and decides whether
// an activation may happen (pim*.go there). This file holds the storage keys, the statuses, the
// sentinel errors and the sealed record types; the rest is split by job:
//
//	pim_eligibility.go  eligibilities: assigning, removing, reading
//	pim_requests.go     schedule requests and activations: activating, approving, deactivating
//	pim_policy.go       role management policies: the defaults, storing, the effective policy
//	pim_index.go        the in-memory index, its reload, and the batches every change is written in
//	pim_duration.go     the ISO 8601 durations of schedules and policies
//
// An activation is an ordinary role assignment with a time window (Assignment.StartsAt/EndsAt)
// written in the same batch as its schedule record, so Decide honours it by the clock and it
// stops granting when its window closes, with no background job. Deactivating deletes both.
//
// Storage layout (sealed JSON records carrying "v": 1, as in rbac.go):
//
//	rbac/pim/eligibility/<guid>      eligibilityRecord: a roleEligibilitySchedule (guid = the AdminAssign request's name)
//	rbac/pim/eligibility-key/<hash>  the live eligibility's name: hash = SHA-256 of lower(scope)|role|lower(principal)
//	rbac/pim/request/<guid>          requestRecord: a roleEligibilityScheduleRequest or a roleAssignmentScheduleRequest
//	rbac/pim/activation/<guid>       activationRecord: a roleAssignmentSchedule (guid = its request's name); it names the
//	                                 rbac/assignment/<guid> that grants, written and deleted in the same batches
//	rbac/pim/policy/<guid>           policyRecord: a roleManagementPolicy changed from the defaults (guid = PolicyName)
//
// The index of these records is kept current like the assignments: by this service's writes and,
// on every node, by KeysApplied (rbac.go hands it every rbac/pim/ key).

import (
	"errors"
	"strings"
)

// Storage keys of just-in-time elevation; see above.
const (
	prefixPIM            = "rbac/pim/"
	prefixEligibility    = "rbac/pim/eligibility/"
	prefixEligibilityKey = "rbac/pim/eligibility-key/"
	prefixRequest        = "rbac/pim/request/"
	prefixActivation     = "rbac/pim/activation/"
	prefixPolicy         = "rbac/pim/policy/"
)

// Kinds of schedule request.
const (
	RequestEligibility = "eligibility" // roleEligibilityScheduleRequests
	RequestAssignment  = "assignment"  // roleAssignmentScheduleRequests
)

// Request statuses (ARM's Status values that this server uses).
const (
	StatusProvisioned     = "Provisioned"
	StatusPendingApproval = "PendingApproval"
	StatusDenied          = "Denied"
	StatusCanceled        = "Canceled"
	StatusRevoked         = "Revoked"
	StatusTimedOut        = "TimedOut"
)

// Sentinel errors of just-in-time elevation; the service package maps them to ARM's codes.
var (
	ErrRequestExists     = errors.New("a schedule request of that name exists")
	ErrEligibilityExists = errors.New("the principal is already eligible for the role at the scope")
	ErrRequestNotPending = errors.New("the request is not pending approval")
)

// The sealed records of the rbac/pim/ keys (see the layout above); version lets get and open
// check "v".
type eligibilityRecord struct {
	V int `json:"v"`
	Eligibility
}

type requestRecord struct {
	V int `json:"v"`
	ScheduleRequest
}

type activationRecord struct {
	V int `json:"v"`
	Activation
}

type policyRecord struct {
	V int `json:"v"`
	Policy
}

func (r *eligibilityRecord) version() int { return r.V }
func (r *requestRecord) version() int     { return r.V }
func (r *activationRecord) version() int  { return r.V }
func (r *policyRecord) version() int      { return r.V }

// memberOf reports whether group is among groups: Decide's test of an activation made through
// a group (Assignment.ViaGroup).
func memberOf(groups []string, group string) bool {
	for _, g := range groups {
		if strings.EqualFold(g, group) {
			return true
		}
	}
	return false
}
