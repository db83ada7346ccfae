package httpapi

// Wire shapes of just-in-time elevation: schedule requests, eligibility and assignment schedules
// (and their instances) as ARM returns them, and the decoding of schedule request PUT bodies.

import (
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
)

const authzProvider = "/providers/Microsoft.Authorization/"

// Wire shapes.

type armExpanded struct {
	Principal      armExpandedRef `json:"principal"`
	RoleDefinition armExpandedRef `json:"roleDefinition"`
	Scope          armExpandedRef `json:"scope"`
}

type armExpandedRef struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"displayName"`
	Type        string  `json:"type"`
	Email       *string `json:"email,omitempty"`
}

type armExpiration struct {
	Type        string  `json:"type"`
	EndDateTime *string `json:"endDateTime"`
	Duration    *string `json:"duration"`
}

type armScheduleInfo struct {
	StartDateTime *string       `json:"startDateTime"`
	Expiration    armExpiration `json:"expiration"`
}

type armTicketInfo struct {
	TicketNumber *string `json:"ticketNumber"`
	TicketSystem *string `json:"ticketSystem"`
}

type armScheduleRequestProperties struct {
	Scope                                   string          `json:"scope"`
	RoleDefinitionID                        string          `json:"roleDefinitionId"`
	PrincipalID                             string          `json:"principalId"`
	PrincipalType                           string          `json:"principalType"`
	RequestType                             string          `json:"requestType"`
	Status                                  string          `json:"status"`
	ApprovalID                              *string         `json:"approvalId"`
	ScheduleInfo                            armScheduleInfo `json:"scheduleInfo"`
	TargetRoleEligibilityScheduleID         *string         `json:"targetRoleEligibilityScheduleId,omitempty"`
	TargetRoleEligibilityScheduleInstanceID *string         `json:"targetRoleEligibilityScheduleInstanceId,omitempty"`
	TargetRoleAssignmentScheduleID          *string         `json:"targetRoleAssignmentScheduleId,omitempty"`
	TargetRoleAssignmentScheduleInstanceID  *string         `json:"targetRoleAssignmentScheduleInstanceId,omitempty"`
	LinkedRoleEligibilityScheduleID         *string         `json:"linkedRoleEligibilityScheduleId,omitempty"`
	Justification                           *string         `json:"justification"`
	TicketInfo                              armTicketInfo   `json:"ticketInfo"`
	Condition                               *string         `json:"condition"`
	ConditionVersion                        *string         `json:"conditionVersion"`
	CreatedOn                               string          `json:"createdOn"`
	RequestorID                             string          `json:"requestorId"`
	ExpandedProperties                      armExpanded     `json:"expandedProperties"`
	// Ours: who settled an approval, when and why.
	ReviewedBy    *string `json:"reviewedBy,omitempty"`
	ReviewedOn    *string `json:"reviewedOn,omitempty"`
	ReviewComment *string `json:"reviewJustification,omitempty"`
}

type armResource[P any] struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties P      `json:"properties"`
}

type armScheduleProperties struct {
	Scope                                   string      `json:"scope"`
	RoleDefinitionID                        string      `json:"roleDefinitionId"`
	PrincipalID                             string      `json:"principalId"`
	PrincipalType                           string      `json:"principalType"`
	RoleEligibilityScheduleRequestID        *string     `json:"roleEligibilityScheduleRequestId,omitempty"`
	RoleEligibilityScheduleID               *string     `json:"roleEligibilityScheduleId,omitempty"`
	RoleAssignmentScheduleRequestID         *string     `json:"roleAssignmentScheduleRequestId,omitempty"`
	RoleAssignmentScheduleID                *string     `json:"roleAssignmentScheduleId,omitempty"`
	OriginRoleAssignmentID                  *string     `json:"originRoleAssignmentId,omitempty"`
	LinkedRoleEligibilityScheduleID         *string     `json:"linkedRoleEligibilityScheduleId,omitempty"`
	LinkedRoleEligibilityScheduleInstanceID *string     `json:"linkedRoleEligibilityScheduleInstanceId,omitempty"`
	AssignmentType                          *string     `json:"assignmentType,omitempty"`
	MemberType                              string      `json:"memberType"`
	Status                                  string      `json:"status"`
	StartDateTime                           string      `json:"startDateTime"`
	EndDateTime                             *string     `json:"endDateTime"`
	Condition                               *string     `json:"condition"`
	ConditionVersion                        *string     `json:"conditionVersion"`
	CreatedOn                               string      `json:"createdOn"`
	UpdatedOn                               *string     `json:"updatedOn,omitempty"`
	ExpandedProperties                      armExpanded `json:"expandedProperties"`
}

func ptrTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := armTime(t)
	return &s
}

func ptrStr(s string) *string { return &s }

// expanded is the expandedProperties of a record.
func (a *armReq) expanded(scope, roleID, roleName, principalID, principalType string) armExpanded {
	return armExpanded{
		Principal:      armExpandedRef{ID: principalID, DisplayName: principalID, Type: principalType},
		RoleDefinition: armExpandedRef{ID: a.roleDefinitionID(roleID), DisplayName: roleName, Type: roleKind(roleID)},
		Scope:          scopeRef(scope),
	}
}

func roleKind(id string) string {
	for _, r := range rbac.BuiltInRoles {
		if r.ID == id {
			return "BuiltInRole"
		}
	}
	return "CustomRole"
}

// scopeRef names a scope as PIM's expanded properties do.
func scopeRef(scope string) armExpandedRef {
	seg := strings.Split(strings.Trim(scope, "/"), "/")
	ref := armExpandedRef{ID: scopeOrSlash(scope), DisplayName: seg[len(seg)-1], Type: "resource"}
	switch len(seg) {
	case 1:
		ref.Type = "root"
		if seg[0] == "" {
			ref.DisplayName = "Root"
		}
	case 2:
		ref.Type = "subscription"
	case 4:
		ref.Type = "resourcegroup"
	}
	return ref
}

func (a *armReq) wireRequest(r *rbac.ScheduleRequest) armResource[armScheduleRequestProperties] {
	kind := "roleAssignmentScheduleRequests"
	if r.Kind == rbac.RequestEligibility {
		kind = "roleEligibilityScheduleRequests"
	}
	base := strings.TrimRight(r.Scope, "/") + authzProvider
	p := armScheduleRequestProperties{Scope: r.Scope, RoleDefinitionID: a.roleDefinitionID(r.RoleID), PrincipalID: r.PrincipalID,
		PrincipalType: r.PrincipalType, RequestType: r.RequestType, Status: r.Status, Justification: strOrNull(r.Justification),
		TicketInfo: armTicketInfo{TicketNumber: strOrNull(r.TicketNumber), TicketSystem: strOrNull(r.TicketSystem)},
		CreatedOn:  armTime(r.CreatedOn), RequestorID: r.RequestorID,
		ScheduleInfo: armScheduleInfo{StartDateTime: ptrTime(r.StartsAt), Expiration: armExpiration{Type: r.ExpirationType,
			EndDateTime: ptrTime(r.EndsAt), Duration: strOrNull(r.Duration)}},
		ExpandedProperties: a.expanded(r.Scope, r.RoleID, r.RoleName, r.PrincipalID, r.PrincipalType),
		ReviewedBy:         strOrNull(r.ReviewedBy), ReviewedOn: ptrTime(r.ReviewedOn), ReviewComment: strOrNull(r.ReviewNote)}
	if p.ScheduleInfo.Expiration.Type == "" {
		p.ScheduleInfo.Expiration.Type = "NoExpiration"
	}
	if r.RequestType == "SelfDeactivate" || r.RequestType == "AdminRemove" {
		p.ScheduleInfo = armScheduleInfo{Expiration: armExpiration{Type: "NoExpiration"}}
	}
	if len(r.Approvers) > 0 || r.Status == rbac.StatusPendingApproval || !r.ReviewedOn.IsZero() {
		p.ApprovalID = ptrStr("/providers/Microsoft.Authorization/roleAssignmentApprovals/" + r.Name)
	}
	if r.TargetSchedule != "" {
		if r.Kind == rbac.RequestEligibility {
			p.TargetRoleEligibilityScheduleID = ptrStr(base + "roleEligibilitySchedules/" + r.TargetSchedule)
			p.TargetRoleEligibilityScheduleInstanceID = ptrStr(base + "roleEligibilityScheduleInstances/" + r.TargetSchedule)
		} else {
			p.TargetRoleAssignmentScheduleID = ptrStr(base + "roleAssignmentSchedules/" + r.TargetSchedule)
			p.TargetRoleAssignmentScheduleInstanceID = ptrStr(base + "roleAssignmentScheduleInstances/" + r.TargetSchedule)
		}
	}
	if r.LinkedEligibility != "" {
		p.LinkedRoleEligibilityScheduleID = ptrStr(a.eligibilityIDOf(r.LinkedEligibility, r.Scope))
	}
	return armResource[armScheduleRequestProperties]{ID: base + kind + "/" + r.Name, Name: r.Name,
		Type: "Microsoft.Authorization/" + strings.ToUpper(kind[:1]) + kind[1:], Properties: p}
}

// eligibilityIDOf is the id of the named eligibility (at its own scope when it still exists).
func (a *armReq) eligibilityIDOf(name, fallbackScope string) string {
	return strings.TrimRight(fallbackScope, "/") + authzProvider + "roleEligibilitySchedules/" + name
}

func (a *armReq) wireEligibility(e *rbac.Eligibility, instance bool) armResource[armScheduleProperties] {
	base := strings.TrimRight(e.Scope, "/") + authzProvider
	member := "Direct"
	if c, ok := service.CallerFrom(a.ctx); ok && !strings.EqualFold(c.ObjectID, e.PrincipalID) && e.PrincipalType == "Group" {
		member = "Group"
	}
	p := armScheduleProperties{Scope: e.Scope, RoleDefinitionID: a.roleDefinitionID(e.RoleID), PrincipalID: e.PrincipalID, PrincipalType: e.PrincipalType,
		RoleEligibilityScheduleRequestID: ptrStr(base + "roleEligibilityScheduleRequests/" + e.RequestName), MemberType: member, Status: "Provisioned",
		StartDateTime: armTime(e.StartsAt), EndDateTime: ptrTime(e.EndsAt), CreatedOn: armTime(e.CreatedOn), UpdatedOn: ptrTime(e.CreatedOn),
		ExpandedProperties: a.expanded(e.Scope, e.RoleID, e.RoleName, e.PrincipalID, e.PrincipalType)}
	kind, typ := "roleEligibilitySchedules/", "Microsoft.Authorization/roleEligibilitySchedules"
	if instance {
		kind, typ = "roleEligibilityScheduleInstances/", "Microsoft.Authorization/roleEligibilityScheduleInstances"
		p.RoleEligibilityScheduleID, p.RoleEligibilityScheduleRequestID, p.UpdatedOn = ptrStr(e.ID()), nil, nil
	}
	return armResource[armScheduleProperties]{ID: base + kind + e.Name, Name: e.Name, Type: typ, Properties: p}
}

func (a *armReq) wireActivation(x *rbac.Activation, instance bool) armResource[armScheduleProperties] {
	base := strings.TrimRight(x.Scope, "/") + authzProvider
	p := armScheduleProperties{Scope: x.Scope, RoleDefinitionID: a.roleDefinitionID(x.RoleID), PrincipalID: x.PrincipalID, PrincipalType: x.PrincipalType,
		RoleAssignmentScheduleRequestID: ptrStr(base + "roleAssignmentScheduleRequests/" + x.RequestName), AssignmentType: strOrNull(x.AssignmentType),
		MemberType: x.MemberType, Status: "Provisioned", StartDateTime: armTime(x.StartsAt), EndDateTime: ptrTime(x.EndsAt),
		CreatedOn: armTime(x.CreatedOn), UpdatedOn: ptrTime(x.CreatedOn),
		ExpandedProperties: a.expanded(x.Scope, x.RoleID, x.RoleName, x.PrincipalID, x.PrincipalType)}
	if x.LinkedEligibility != "" {
		p.LinkedRoleEligibilityScheduleID = ptrStr(a.eligibilityIDOf(x.LinkedEligibility, x.Scope))
	}
	kind, typ := "roleAssignmentSchedules/", "Microsoft.Authorization/roleAssignmentSchedules"
	if instance {
		kind, typ = "roleAssignmentScheduleInstances/", "Microsoft.Authorization/roleAssignmentScheduleInstances"
		p.RoleAssignmentScheduleID, p.RoleAssignmentScheduleRequestID, p.UpdatedOn = ptrStr(x.ID()), nil, nil
		p.OriginRoleAssignmentID = ptrStr(base + "roleAssignments/" + x.AssignmentName)
		if x.LinkedEligibility != "" {
			p.LinkedRoleEligibilityScheduleInstanceID = ptrStr(strings.Replace(*p.LinkedRoleEligibilityScheduleID, "/roleEligibilitySchedules/", "/roleEligibilityScheduleInstances/", 1))
		}
	}
	return armResource[armScheduleProperties]{ID: base + kind + x.Name, Name: x.Name, Type: typ, Properties: p}
}

// armList is the body of a list: {"value": [...]}.
type armList[P any] struct {
	Value []armResource[P] `json:"value"`
}

// PUT bodies.

// armTimeIn parses the times clients send (RFC 3339, with or without a zone: UTC then).
func armTimeIn(s *string) (*time.Time, bool) {
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil, true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, strings.TrimSpace(*s)); err == nil {
			t = t.UTC()
			return &t, true
		}
	}
	return nil, false
}

func (a *armReq) decodeScheduleRequest() (service.ScheduleRequestInput, bool) {
	var body struct {
		Properties *struct {
			PrincipalID      string `json:"principalId"`
			RoleDefinitionID string `json:"roleDefinitionId"`
			RequestType      string `json:"requestType"`
			Justification    string `json:"justification"`
			LinkedID         string `json:"linkedRoleEligibilityScheduleId"`
			Condition        string `json:"condition"`
			ConditionVersion string `json:"conditionVersion"`
			TicketInfo       *struct {
				TicketNumber string `json:"ticketNumber"`
				TicketSystem string `json:"ticketSystem"`
			} `json:"ticketInfo"`
			ScheduleInfo *struct {
				StartDateTime *string `json:"startDateTime"`
				Expiration    *struct {
					Type        string  `json:"type"`
					Duration    *string `json:"duration"`
					EndDateTime *string `json:"endDateTime"`
				} `json:"expiration"`
			} `json:"scheduleInfo"`
		} `json:"properties"`
	}
	if !a.decode(&body) {
		return service.ScheduleRequestInput{}, false
	}
	p := body.Properties
	if p == nil {
		a.fail(errNoProperties)
		return service.ScheduleRequestInput{}, false
	}
	in := service.ScheduleRequestInput{PrincipalID: p.PrincipalID, RoleDefinitionID: p.RoleDefinitionID, RequestType: p.RequestType,
		Justification: p.Justification, LinkedRoleEligibilityScheduleID: p.LinkedID, Condition: p.Condition, ConditionVersion: p.ConditionVersion}
	if p.TicketInfo != nil {
		in.TicketNumber, in.TicketSystem = p.TicketInfo.TicketNumber, p.TicketInfo.TicketSystem
	}
	badTime := &service.Error{Kind: service.ErrBadRequest, Code: "InvalidScheduleInfo", Message: "scheduleInfo times must be ISO 8601 date-times such as 2026-03-01T09:00:00Z."}
	if si := p.ScheduleInfo; si != nil {
		var ok bool
		if in.Schedule.StartDateTime, ok = armTimeIn(si.StartDateTime); !ok {
			a.fail(badTime)
			return service.ScheduleRequestInput{}, false
		}
		if x := si.Expiration; x != nil {
			in.Schedule.ExpirationType = x.Type
			if x.Duration != nil {
				in.Schedule.Duration = *x.Duration
			}
			if in.Schedule.EndDateTime, ok = armTimeIn(x.EndDateTime); !ok {
				a.fail(badTime)
				return service.ScheduleRequestInput{}, false
			}
		}
	}
	return in, true
}
