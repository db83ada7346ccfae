package httpapi

// Just-in-time elevation (Privileged Identity Management for Azure resources) in ARM's shapes of
// api-version 2020-10-01, so that armauthorization's schedule, request and policy clients work
// unmodified. Approvals, which Azure takes through Microsoft Graph, are ours:
//
//	POST {scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}/approve  {"justification":"..."}
//	POST {scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/{name}/deny     {"justification":"..."}
//
// answered with the request (status Provisioned or Denied), and GET
// .../roleAssignmentScheduleRequests?$filter=asApprover() lists what the caller may approve.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
)

// pimRoutes serve just-in-time elevation (Privileged Identity Management for Azure resources).
// A kind "x/verb" is POST .../x/{name}/verb (serveAuthorization folds the third segment in).
var pimRoutes = []authorizationRoute{
	{"roleeligibilityschedulerequests", false, "GET", "RoleEligibilityScheduleRequestList", (*armReq).listEligibilityRequests},
	{"roleeligibilityschedulerequests", true, "GET", "RoleEligibilityScheduleRequestRead", (*armReq).getEligibilityRequest},
	{"roleeligibilityschedulerequests", true, "PUT", "RoleEligibilityScheduleRequestWrite", (*armReq).putEligibilityRequest},
	{"roleeligibilityschedules", false, "GET", "RoleEligibilityScheduleList", (*armReq).listEligibilitySchedules},
	{"roleeligibilityschedules", true, "GET", "RoleEligibilityScheduleRead", (*armReq).getEligibilitySchedule},
	{"roleeligibilityscheduleinstances", false, "GET", "RoleEligibilityScheduleInstanceList", (*armReq).listEligibilityInstances},
	{"roleeligibilityscheduleinstances", true, "GET", "RoleEligibilityScheduleInstanceRead", (*armReq).getEligibilityInstance},
	{"roleassignmentschedulerequests", false, "GET", "RoleAssignmentScheduleRequestList", (*armReq).listAssignmentRequests},
	{"roleassignmentschedulerequests", true, "GET", "RoleAssignmentScheduleRequestRead", (*armReq).getAssignmentRequest},
	{"roleassignmentschedulerequests", true, "PUT", "RoleAssignmentScheduleRequestWrite", (*armReq).putAssignmentRequest},
	{"roleassignmentschedulerequests/cancel", true, "POST", "RoleAssignmentScheduleRequestCancel", (*armReq).cancelAssignmentRequest},
	{"roleassignmentschedulerequests/approve", true, "POST", "RoleAssignmentScheduleRequestApprove", (*armReq).approveAssignmentRequest},
	{"roleassignmentschedulerequests/deny", true, "POST", "RoleAssignmentScheduleRequestDeny", (*armReq).denyAssignmentRequest},
	{"roleassignmentschedules", false, "GET", "RoleAssignmentScheduleList", (*armReq).listAssignmentSchedules},
	{"roleassignmentschedules", true, "GET", "RoleAssignmentScheduleRead", (*armReq).getAssignmentSchedule},
	{"roleassignmentscheduleinstances", false, "GET", "RoleAssignmentScheduleInstanceList", (*armReq).listAssignmentInstances},
	{"roleassignmentscheduleinstances", true, "GET", "RoleAssignmentScheduleInstanceRead", (*armReq).getAssignmentInstance},
	{"rolemanagementpolicies", false, "GET", "RoleManagementPolicyList", (*armReq).listPolicies},
	{"rolemanagementpolicies", true, "GET", "RoleManagementPolicyRead", (*armReq).getPolicy},
	{"rolemanagementpolicies", true, "PATCH", "RoleManagementPolicyWrite", (*armReq).patchPolicy},
	{"rolemanagementpolicyassignments", false, "GET", "RoleManagementPolicyAssignmentList", (*armReq).listPolicyAssignments},
	{"rolemanagementpolicyassignments", true, "GET", "RoleManagementPolicyAssignmentRead", (*armReq).getPolicyAssignment},
}

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
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content is missing 'properties'."})
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

func (a *armReq) putEligibilityRequest(scope, name string) {
	in, ok := a.decodeScheduleRequest()
	if !ok {
		return
	}
	r, err := a.s.svc.RequestRoleEligibility(a.ctx, scope, name, in)
	a.writeRequest(&r, err)
}

func (a *armReq) putAssignmentRequest(scope, name string) {
	in, ok := a.decodeScheduleRequest()
	if !ok {
		return
	}
	r, err := a.s.svc.RequestRoleAssignment(a.ctx, scope, name, in)
	a.writeRequest(&r, err)
}

func (a *armReq) writeRequest(r *rbac.ScheduleRequest, err error) {
	if err != nil {
		a.fail(err)
		return
	}
	w := a.wireRequest(r)
	a.resourceID = w.ID
	writeJSON(a.w, http.StatusCreated, w)
}

func (a *armReq) pimFilter() (service.PIMFilter, bool) {
	f, err := service.ParsePIMFilter(a.r.URL.Query().Get("$filter"))
	if err != nil {
		a.fail(err)
		return f, false
	}
	return f, true
}

func (a *armReq) listRequests(kind, scope string) {
	f, ok := a.pimFilter()
	if !ok {
		return
	}
	list, err := a.s.svc.ListScheduleRequests(a.ctx, kind, scope, f)
	out := armList[armScheduleRequestProperties]{Value: make([]armResource[armScheduleRequestProperties], 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wireRequest(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

type armList[P any] struct {
	Value []armResource[P] `json:"value"`
}

func (a *armReq) listEligibilityRequests(scope, _ string) {
	a.listRequests(rbac.RequestEligibility, scope)
}
func (a *armReq) listAssignmentRequests(scope, _ string) {
	a.listRequests(rbac.RequestAssignment, scope)
}

func (a *armReq) getEligibilityRequest(scope, name string) {
	r, err := a.s.svc.GetScheduleRequest(a.ctx, rbac.RequestEligibility, scope, name)
	a.ok(http.StatusOK, a.wireRequest(&r), err)
}

func (a *armReq) getAssignmentRequest(scope, name string) {
	r, err := a.s.svc.GetScheduleRequest(a.ctx, rbac.RequestAssignment, scope, name)
	a.ok(http.StatusOK, a.wireRequest(&r), err)
}

func (a *armReq) cancelAssignmentRequest(scope, name string) {
	_, err := a.s.svc.CancelRoleAssignmentRequest(a.ctx, scope, name)
	if err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK) // the SDK's Cancel expects 200 and no body
}

func (a *armReq) review(scope, name string, approve bool) {
	var body struct {
		Justification string `json:"justification"`
	}
	if a.r.ContentLength != 0 {
		raw := json.NewDecoder(a.r.Body)
		if err := raw.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content was invalid: send {\"justification\":\"...\"} or nothing."})
			return
		}
	}
	r, err := a.s.svc.ReviewRoleAssignmentRequest(a.ctx, scope, name, approve, body.Justification)
	a.ok(http.StatusOK, a.wireRequest(&r), err)
}

func (a *armReq) approveAssignmentRequest(scope, name string) { a.review(scope, name, true) }
func (a *armReq) denyAssignmentRequest(scope, name string)    { a.review(scope, name, false) }

func (a *armReq) listEligibilities(scope string, instance bool) {
	f, ok := a.pimFilter()
	if !ok {
		return
	}
	list, err := a.s.svc.ListRoleEligibilitySchedules(a.ctx, scope, f)
	out := armList[armScheduleProperties]{Value: make([]armResource[armScheduleProperties], 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wireEligibility(&list[i], instance))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) listEligibilitySchedules(scope, _ string) { a.listEligibilities(scope, false) }
func (a *armReq) listEligibilityInstances(scope, _ string) { a.listEligibilities(scope, true) }

func (a *armReq) getEligibilitySchedule(scope, name string) {
	e, err := a.s.svc.GetRoleEligibilitySchedule(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wireEligibility(&e, false), err)
}

func (a *armReq) getEligibilityInstance(scope, name string) {
	e, err := a.s.svc.GetRoleEligibilitySchedule(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wireEligibility(&e, true), err)
}

func (a *armReq) listActivations(scope string, instance bool) {
	f, ok := a.pimFilter()
	if !ok {
		return
	}
	list, err := a.s.svc.ListRoleAssignmentSchedules(a.ctx, scope, f)
	out := armList[armScheduleProperties]{Value: make([]armResource[armScheduleProperties], 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wireActivation(&list[i], instance))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) listAssignmentSchedules(scope, _ string) { a.listActivations(scope, false) }
func (a *armReq) listAssignmentInstances(scope, _ string) { a.listActivations(scope, true) }

func (a *armReq) getAssignmentSchedule(scope, name string) {
	x, err := a.s.svc.GetRoleAssignmentSchedule(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wireActivation(&x, false), err)
}

func (a *armReq) getAssignmentInstance(scope, name string) {
	x, err := a.s.svc.GetRoleAssignmentSchedule(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wireActivation(&x, true), err)
}

// Role management policies.

type armRuleTarget struct {
	Caller              string   `json:"caller"`
	Operations          []string `json:"operations"`
	Level               string   `json:"level"`
	TargetObjects       []string `json:"targetObjects"`
	InheritableSettings []string `json:"inheritableSettings"`
	EnforcedSettings    []string `json:"enforcedSettings"`
}

type armUserSet struct {
	ID          string `json:"id"`
	UserType    string `json:"userType"`
	Description string `json:"description"`
	IsBackup    bool   `json:"isBackup"`
}

type armApprovalStage struct {
	ApprovalStageTimeOutInDays      int          `json:"approvalStageTimeOutInDays"`
	IsApproverJustificationRequired bool         `json:"isApproverJustificationRequired"`
	EscalationTimeInMinutes         int          `json:"escalationTimeInMinutes"`
	IsEscalationEnabled             bool         `json:"isEscalationEnabled"`
	PrimaryApprovers                []armUserSet `json:"primaryApprovers"`
	EscalationApprovers             []armUserSet `json:"escalationApprovers"`
}

type armApprovalSettings struct {
	IsApprovalRequired               bool               `json:"isApprovalRequired"`
	IsApprovalRequiredForExtension   bool               `json:"isApprovalRequiredForExtension"`
	IsRequestorJustificationRequired bool               `json:"isRequestorJustificationRequired"`
	ApprovalMode                     string             `json:"approvalMode"`
	ApprovalStages                   []armApprovalStage `json:"approvalStages"`
}

// armRule is one policy rule; ruleType says which fields it carries.
type armRule struct {
	ID                   string               `json:"id"`
	RuleType             string               `json:"ruleType"`
	IsExpirationRequired *bool                `json:"isExpirationRequired,omitempty"`
	MaximumDuration      *string              `json:"maximumDuration,omitempty"`
	EnabledRules         *[]string            `json:"enabledRules,omitempty"`
	Setting              *armApprovalSettings `json:"setting,omitempty"`
	Target               armRuleTarget        `json:"target"`
}

type armPolicyProperties struct {
	Scope                 string         `json:"scope"`
	DisplayName           string         `json:"displayName"`
	Description           string         `json:"description"`
	IsOrganizationDefault bool           `json:"isOrganizationDefault"`
	LastModifiedBy        *armPrincipal  `json:"lastModifiedBy"`
	LastModifiedDateTime  *string        `json:"lastModifiedDateTime"`
	Rules                 []armRule      `json:"rules"`
	EffectiveRules        []armRule      `json:"effectiveRules"`
	PolicyProperties      map[string]any `json:"policyProperties"`
}

type armPrincipal struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Type        string `json:"type"`
}

func target(caller, level string) armRuleTarget {
	return armRuleTarget{Caller: caller, Operations: []string{"All"}, Level: level, TargetObjects: []string{}, InheritableSettings: []string{}, EnforcedSettings: []string{}}
}

func wireRules(p *rbac.Policy) []armRule {
	yes := true
	elig, act := p.EligibilityExpirationRequired, true
	eligMax, actMax := p.EligibilityMaximumDuration, p.ActivationMaximumDuration
	enabled := append([]string{}, p.EnabledRules...)
	approvers := make([]armUserSet, 0, len(p.Approvers))
	for _, ap := range p.Approvers {
		approvers = append(approvers, armUserSet{ID: ap.ID, UserType: ap.UserType, Description: ap.Description})
	}
	timeout := p.ApprovalTimeoutDays
	if timeout <= 0 {
		timeout = 1
	}
	return []armRule{
		{ID: service.RuleExpirationAdminEligibility, RuleType: "RoleManagementPolicyExpirationRule", IsExpirationRequired: &elig, MaximumDuration: &eligMax, Target: target("Admin", "Eligibility")},
		{ID: service.RuleExpirationEndUser, RuleType: "RoleManagementPolicyExpirationRule", IsExpirationRequired: &act, MaximumDuration: &actMax, Target: target("EndUser", "Assignment")},
		{ID: service.RuleEnablementEndUser, RuleType: "RoleManagementPolicyEnablementRule", EnabledRules: &enabled, Target: target("EndUser", "Assignment")},
		{ID: service.RuleApprovalEndUser, RuleType: "RoleManagementPolicyApprovalRule", Setting: &armApprovalSettings{IsApprovalRequired: p.ApprovalRequired,
			IsRequestorJustificationRequired: yes, ApprovalMode: "SingleStage", ApprovalStages: []armApprovalStage{{ApprovalStageTimeOutInDays: timeout,
				PrimaryApprovers: approvers, EscalationApprovers: []armUserSet{}}}}, Target: target("EndUser", "Assignment")},
	}
}

func (a *armReq) policyID(scope, name string) string {
	return strings.TrimRight(scope, "/") + authzProvider + "roleManagementPolicies/" + name
}

func (a *armReq) wirePolicy(p *service.RolePolicy) armResource[armPolicyProperties] {
	name := p.Name()
	props := armPolicyProperties{Scope: p.Scope, DisplayName: "Default", Description: "The just-in-time policy of " + p.RoleName + " at this scope.",
		Rules: wireRules(&p.Policy), EffectiveRules: wireRules(&p.Effective),
		PolicyProperties: map[string]any{"scope": scopeRef(p.Scope)}}
	if p.Stored {
		props.LastModifiedBy = &armPrincipal{ID: p.UpdatedBy, DisplayName: p.UpdatedBy, Type: "User"}
		props.LastModifiedDateTime = ptrTime(p.UpdatedOn)
	}
	return armResource[armPolicyProperties]{ID: a.policyID(p.Scope, name), Name: name, Type: "Microsoft.Authorization/roleManagementPolicies", Properties: props}
}

func (a *armReq) listPolicies(scope, _ string) {
	f, err := service.ParsePolicyFilter(a.r.URL.Query().Get("$filter"))
	if err != nil {
		a.fail(err)
		return
	}
	list, err := a.s.svc.ListRoleManagementPolicies(a.ctx, scope, f)
	out := armList[armPolicyProperties]{Value: make([]armResource[armPolicyProperties], 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wirePolicy(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) getPolicy(scope, name string) {
	p, err := a.s.svc.GetRoleManagementPolicy(a.ctx, scope, name)
	a.ok(http.StatusOK, a.wirePolicy(&p), err)
}

func (a *armReq) patchPolicy(scope, name string) {
	var body struct {
		Properties *struct {
			Rules []struct {
				ID                   string    `json:"id"`
				RuleType             string    `json:"ruleType"`
				IsExpirationRequired *bool     `json:"isExpirationRequired"`
				MaximumDuration      *string   `json:"maximumDuration"`
				EnabledRules         *[]string `json:"enabledRules"`
				Setting              *struct {
					IsApprovalRequired *bool `json:"isApprovalRequired"`
					ApprovalStages     *[]struct {
						ApprovalStageTimeOutInDays *int `json:"approvalStageTimeOutInDays"`
						PrimaryApprovers           *[]struct {
							ID          string `json:"id"`
							UserType    string `json:"userType"`
							Description string `json:"description"`
						} `json:"primaryApprovers"`
					} `json:"approvalStages"`
				} `json:"setting"`
			} `json:"rules"`
		} `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content is missing 'properties'."})
		return
	}
	var rules []service.PolicyRuleInput
	for _, r := range body.Properties.Rules {
		in := service.PolicyRuleInput{ID: r.ID, IsExpirationRequired: r.IsExpirationRequired, MaximumDuration: r.MaximumDuration, EnabledRules: r.EnabledRules}
		if st := r.Setting; st != nil {
			in.IsApprovalRequired = st.IsApprovalRequired
			if st.ApprovalStages != nil {
				in.ApprovalStages = len(*st.ApprovalStages)
				if len(*st.ApprovalStages) > 0 {
					stage := (*st.ApprovalStages)[0]
					in.ApprovalTimeoutDays = stage.ApprovalStageTimeOutInDays
					if stage.PrimaryApprovers != nil {
						approvers := make([]rbac.Approver, 0, len(*stage.PrimaryApprovers))
						for _, ap := range *stage.PrimaryApprovers {
							approvers = append(approvers, rbac.Approver{ID: ap.ID, UserType: ap.UserType, Description: ap.Description})
						}
						in.Approvers = &approvers
					}
				}
			}
		}
		rules = append(rules, in)
	}
	p, err := a.s.svc.UpdateRoleManagementPolicy(a.ctx, scope, name, rules)
	if err == nil {
		a.resourceID = a.policyID(p.Scope, p.Name())
	}
	a.ok(http.StatusOK, a.wirePolicy(&p), err)
}

// Role management policy assignments: one per (scope, role), named {policy}_{role}, as Azure
// names them; they are how clients find the policy of a role.

type armPolicyAssignmentProperties struct {
	Scope                      string         `json:"scope"`
	RoleDefinitionID           string         `json:"roleDefinitionId"`
	PolicyID                   string         `json:"policyId"`
	EffectiveRules             []armRule      `json:"effectiveRules"`
	PolicyAssignmentProperties map[string]any `json:"policyAssignmentProperties"`
}

func (a *armReq) wirePolicyAssignment(p *service.RolePolicy) armResource[armPolicyAssignmentProperties] {
	name := p.Name() + "_" + p.RoleID
	policyID := a.policyID(p.Scope, p.Name())
	return armResource[armPolicyAssignmentProperties]{ID: strings.TrimRight(p.Scope, "/") + authzProvider + "roleManagementPolicyAssignments/" + name,
		Name: name, Type: "Microsoft.Authorization/roleManagementPolicyAssignment",
		Properties: armPolicyAssignmentProperties{Scope: p.Scope, RoleDefinitionID: a.roleDefinitionID(p.RoleID), PolicyID: policyID,
			EffectiveRules: wireRules(&p.Effective),
			PolicyAssignmentProperties: map[string]any{"scope": scopeRef(p.Scope),
				"roleDefinition": armExpandedRef{ID: a.roleDefinitionID(p.RoleID), DisplayName: p.RoleName, Type: roleKind(p.RoleID)},
				"policy":         map[string]any{"id": policyID, "lastModifiedDateTime": ptrTime(p.UpdatedOn)}}}}
}

func (a *armReq) listPolicyAssignments(scope, _ string) {
	f, err := service.ParsePolicyFilter(a.r.URL.Query().Get("$filter"))
	if err != nil {
		a.fail(err)
		return
	}
	list, err := a.s.svc.ListRoleManagementPolicies(a.ctx, scope, f)
	out := armList[armPolicyAssignmentProperties]{Value: make([]armResource[armPolicyAssignmentProperties], 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, a.wirePolicyAssignment(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) getPolicyAssignment(scope, name string) {
	role := name
	if i := strings.LastIndex(name, "_"); i >= 0 {
		role = name[i+1:]
	}
	p, err := a.s.svc.GetRoleManagementPolicy(a.ctx, scope, role)
	if err == nil && !strings.EqualFold(p.Name()+"_"+p.RoleID, name) && !strings.EqualFold(role, name) {
		err = &service.Error{Kind: service.ErrNotFound, Code: "RoleManagementPolicyAssignmentNotFound", Message: "The role management policy assignment '" + name + "' is not found."}
	}
	a.ok(http.StatusOK, a.wirePolicyAssignment(&p), err)
}
