package httpapi

// Just-in-time elevation (Privileged Identity Management for Azure resources) in ARM's shapes of
// api-version 2020-10-01, so that armauthorization's schedule, request and policy clients work
// unmodified. This file holds the routes and their handlers for schedule requests and schedules;
// arm_pim_wire.go the wire shapes and the decoding of PUT bodies, arm_pim_policy.go the role
// management policies and policy assignments. Approvals, which Azure takes through Microsoft
// Graph, are ours:
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
