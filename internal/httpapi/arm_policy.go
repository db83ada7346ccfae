package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/policy"
	"github.com/strongroom/strongroom/internal/service"
)

// policyRoutes serve Azure Policy's Microsoft.Authorization resources (docs/policy.md):
//
//	GET                /providers/Microsoft.Authorization/policyDefinitions[/{guid}]         built-ins
//	GET|PUT|DELETE     /subscriptions/{s}/providers/Microsoft.Authorization/policyDefinitions[/{name}]
//	GET|PUT|DELETE     {scope}/providers/Microsoft.Authorization/policyAssignments[/{name}]
//	GET|PUT|DELETE     {scope}/providers/Microsoft.Authorization/policyExemptions[/{name}]
//
// with {scope} the subscription, a resource group or a vault.
var policyRoutes = []authorizationRoute{
	{"policydefinitions", false, "GET", "PolicyDefinitionList", (*armReq).listPolicyDefinitions},
	{"policydefinitions", true, "GET", "PolicyDefinitionRead", (*armReq).getPolicyDefinition},
	{"policydefinitions", true, "PUT", "PolicyDefinitionWrite", (*armReq).putPolicyDefinition},
	{"policydefinitions", true, "DELETE", "PolicyDefinitionDelete", (*armReq).deletePolicyDefinition},
	{"policyassignments", false, "GET", "PolicyAssignmentList", (*armReq).listAzPolicyAssignments},
	{"policyassignments", true, "GET", "PolicyAssignmentRead", (*armReq).getAzPolicyAssignment},
	{"policyassignments", true, "PUT", "PolicyAssignmentWrite", (*armReq).putAzPolicyAssignment},
	{"policyassignments", true, "DELETE", "PolicyAssignmentDelete", (*armReq).deleteAzPolicyAssignment},
	{"policyexemptions", false, "GET", "PolicyExemptionList", (*armReq).listPolicyExemptions},
	{"policyexemptions", true, "GET", "PolicyExemptionRead", (*armReq).getPolicyExemption},
	{"policyexemptions", true, "PUT", "PolicyExemptionWrite", (*armReq).putPolicyExemption},
	{"policyexemptions", true, "DELETE", "PolicyExemptionDelete", (*armReq).deletePolicyExemption},
}

// atSubscription reports whether scope is the subscription (custom definitions live there);
// "" is the tenant root, where only built-ins are.
func (a *armReq) atSubscription(scope string) (bool, error) {
	scope = strings.TrimSuffix(scope, "/")
	if scope == "" {
		return false, nil
	}
	if strings.EqualFold(scope, a.s.svc.SubscriptionScope()) {
		return true, nil
	}
	return false, &service.Error{Kind: service.ErrBadRequest, Code: "InvalidScope", Message: "Policy definitions live at the tenant root (built-ins) or the subscription (custom ones)."}
}

func (a *armReq) listPolicyDefinitions(scope, _ string) {
	sub, err := a.atSubscription(scope)
	if err != nil {
		a.fail(err)
		return
	}
	defs, err := a.s.svc.ListPolicyDefinitions(a.ctx, sub)
	a.ok(http.StatusOK, struct {
		Value []policy.Definition `json:"value"`
	}{Value: defs}, err)
}

func (a *armReq) getPolicyDefinition(scope, name string) {
	sub, err := a.atSubscription(scope)
	if err != nil {
		a.fail(err)
		return
	}
	d, err := a.s.svc.GetPolicyDefinition(a.ctx, name, sub)
	if err == nil {
		a.resourceID = d.ID
	}
	a.ok(http.StatusOK, d, err)
}

func (a *armReq) putPolicyDefinition(scope, name string) {
	sub, err := a.atSubscription(scope)
	if err == nil && !sub {
		err = &service.Error{Kind: service.ErrBadRequest, Code: "InvalidScope", Message: "Custom policy definitions are created at the subscription."}
	}
	if err != nil {
		a.fail(err)
		return
	}
	var body struct {
		Properties *policy.DefinitionProperties `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(errNoProperties)
		return
	}
	d, _, err := a.s.svc.PutPolicyDefinition(a.ctx, name, *body.Properties)
	if err == nil {
		a.resourceID = d.ID
	}
	a.ok(http.StatusCreated, d, err) // 201 for a replace too: the API's only success status (the SDKs accept no other)
}

func (a *armReq) deletePolicyDefinition(scope, name string) {
	if sub, err := a.atSubscription(scope); err != nil || !sub {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidScope", Message: "Custom policy definitions are deleted at the subscription; built-ins cannot be."})
		return
	}
	found, err := a.s.svc.DeletePolicyDefinition(a.ctx, name)
	switch {
	case err != nil:
		a.fail(err)
	case !found:
		a.w.WriteHeader(http.StatusNoContent)
	default:
		a.w.WriteHeader(http.StatusOK)
	}
}

type armPolicyAssignment struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Properties armPolicyAssignmentProps `json:"properties"`
	SystemData *wireSystemData          `json:"systemData,omitempty"`
}

type armPolicyAssignmentProps struct {
	DisplayName           string                         `json:"displayName,omitempty"`
	Description           string                         `json:"description,omitempty"`
	PolicyDefinitionID    string                         `json:"policyDefinitionId"`
	Scope                 string                         `json:"scope"`
	NotScopes             []string                       `json:"notScopes"`
	Parameters            map[string]policy.ParamValue   `json:"parameters,omitempty"`
	EnforcementMode       string                         `json:"enforcementMode"`
	NonComplianceMessages []service.NonComplianceMessage `json:"nonComplianceMessages,omitempty"`
	Metadata              map[string]any                 `json:"metadata,omitempty"`
}

func wirePolicyAssignment(p *service.PolicyAssignment) armPolicyAssignment {
	ns := p.NotScopes
	if ns == nil {
		ns = []string{}
	}
	return armPolicyAssignment{ID: p.ID(), Name: p.Name, Type: "Microsoft.Authorization/policyAssignments",
		Properties: armPolicyAssignmentProps{DisplayName: p.DisplayName, Description: p.Description, PolicyDefinitionID: p.PolicyDefinitionID,
			Scope: p.Scope, NotScopes: ns, Parameters: p.Parameters, EnforcementMode: p.EnforcementMode,
			NonComplianceMessages: p.NonComplianceMessages, Metadata: p.Metadata},
		SystemData: &wireSystemData{CreatedBy: p.CreatedBy, CreatedByType: "Application", CreatedAt: p.CreatedAt.Format(time.RFC3339Nano),
			LastModifiedAt: p.UpdatedAt.Format(time.RFC3339Nano)}}
}

func (a *armReq) putAzPolicyAssignment(scope, name string) {
	var body struct {
		Properties *armPolicyAssignmentProps `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(errNoProperties)
		return
	}
	p := body.Properties
	pa, _, err := a.s.svc.PutPolicyAssignment(a.ctx, scope, name, service.PolicyAssignmentInput{DisplayName: p.DisplayName,
		Description: p.Description, PolicyDefinitionID: p.PolicyDefinitionID, EnforcementMode: p.EnforcementMode, Parameters: p.Parameters,
		NotScopes: p.NotScopes, NonComplianceMessages: p.NonComplianceMessages, Metadata: p.Metadata})
	if err == nil {
		a.resourceID = pa.ID()
	}
	a.ok(http.StatusCreated, wirePolicyAssignment(&pa), err) // 201 for a replace too, as Azure answers
}

func (a *armReq) getAzPolicyAssignment(scope, name string) {
	pa, err := a.s.svc.GetPolicyAssignment(a.ctx, scope, name)
	a.ok(http.StatusOK, wirePolicyAssignment(&pa), err)
}

func (a *armReq) listAzPolicyAssignments(scope, _ string) {
	list, err := a.s.svc.ListPolicyAssignments(a.ctx, scope)
	out := struct {
		Value []armPolicyAssignment `json:"value"`
	}{Value: make([]armPolicyAssignment, 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, wirePolicyAssignment(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) deleteAzPolicyAssignment(scope, name string) {
	pa, found, err := a.s.svc.DeletePolicyAssignment(a.ctx, scope, name)
	switch {
	case err != nil:
		a.fail(err)
	case !found:
		a.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(a.w, http.StatusOK, wirePolicyAssignment(&pa))
	}
}

type armPolicyExemption struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Properties armPolicyExemptionProps `json:"properties"`
}

type armPolicyExemptionProps struct {
	PolicyAssignmentID           string         `json:"policyAssignmentId"`
	PolicyDefinitionReferenceIDs []string       `json:"policyDefinitionReferenceIds,omitempty"`
	ExemptionCategory            string         `json:"exemptionCategory"`
	DisplayName                  string         `json:"displayName,omitempty"`
	Description                  string         `json:"description,omitempty"`
	ExpiresOn                    *time.Time     `json:"expiresOn,omitempty"`
	Metadata                     map[string]any `json:"metadata,omitempty"`
}

func wirePolicyExemption(e *service.PolicyExemption) armPolicyExemption {
	return armPolicyExemption{ID: e.ID(), Name: e.Name, Type: "Microsoft.Authorization/policyExemptions",
		Properties: armPolicyExemptionProps{PolicyAssignmentID: e.PolicyAssignmentID, PolicyDefinitionReferenceIDs: e.PolicyDefinitionReferenceIDs,
			ExemptionCategory: e.ExemptionCategory, DisplayName: e.DisplayName, Description: e.Description, ExpiresOn: e.ExpiresOn, Metadata: e.Metadata}}
}

func (a *armReq) putPolicyExemption(scope, name string) {
	var body struct {
		Properties *armPolicyExemptionProps `json:"properties"`
	}
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil {
		a.fail(errNoProperties)
		return
	}
	p := body.Properties
	pe, created, err := a.s.svc.PutPolicyExemption(a.ctx, scope, name, service.PolicyExemptionInput{PolicyAssignmentID: p.PolicyAssignmentID,
		ExemptionCategory: p.ExemptionCategory, DisplayName: p.DisplayName, Description: p.Description,
		PolicyDefinitionReferenceIDs: p.PolicyDefinitionReferenceIDs, ExpiresOn: p.ExpiresOn, Metadata: p.Metadata})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if err == nil {
		a.resourceID = pe.ID()
	}
	a.ok(status, wirePolicyExemption(&pe), err)
}

func (a *armReq) getPolicyExemption(scope, name string) {
	pe, err := a.s.svc.GetPolicyExemption(a.ctx, scope, name)
	a.ok(http.StatusOK, wirePolicyExemption(&pe), err)
}

func (a *armReq) listPolicyExemptions(scope, _ string) {
	list, err := a.s.svc.ListPolicyExemptions(a.ctx, scope)
	out := struct {
		Value []armPolicyExemption `json:"value"`
	}{Value: make([]armPolicyExemption, 0, len(list))}
	for i := range list {
		out.Value = append(out.Value, wirePolicyExemption(&list[i]))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) deletePolicyExemption(scope, name string) {
	pe, found, err := a.s.svc.DeletePolicyExemption(a.ctx, scope, name)
	switch {
	case err != nil:
		a.fail(err)
	case !found:
		a.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(a.w, http.StatusOK, wirePolicyExemption(&pe))
	}
}

// PolicyInsights' policy states at a scope, computed when asked (docs/policy.md):
//
//	POST {scope}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize
//	POST {scope}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults
//	POST {scope}/providers/Microsoft.PolicyInsights/policyStates/latest/triggerEvaluation
const insightsSegment = "/providers/microsoft.policyinsights/policystates/latest/"

var insightsOps = map[string]string{"summarize": "PolicyStatesSummarize", "queryresults": "PolicyStatesQuery", "triggerevaluation": "PolicyStatesTriggerEvaluation"}

func insightsPath(p string) (scope, verb string, ok bool) {
	i := strings.LastIndex(strings.ToLower(p), insightsSegment)
	if i < 0 {
		return "", "", false
	}
	return p[:i], strings.ToLower(strings.Trim(p[i+len(insightsSegment):], "/")), true
}

func (s *Server) serveInsights(w http.ResponseWriter, r *http.Request, scope, verb string) {
	op, known := insightsOps[verb]
	if !known || r.Method != http.MethodPost {
		code, status := "InvalidResourceType", http.StatusNotFound
		if known {
			code, status = "MethodNotAllowed", http.StatusMethodNotAllowed
		}
		azkv.WriteError(w, status, azkv.NewError(code, "The requested path "+r.URL.Path+" with method "+r.Method+" is not supported.", ""))
		return
	}
	a := &armReq{s: s, w: w, r: r, ctx: r.Context(), op: op, resourceID: scopeOrSlash(scope)}
	if a.authenticate(false) {
		info(r).arm = a
		switch verb {
		case "summarize":
			a.summarizePolicyStates(scope)
		case "queryresults":
			a.queryPolicyStates(scope)
		default:
			a.triggerPolicyEvaluation(scope)
		}
	}
	ri := info(r)
	ri.op, ri.resourceID, ri.objectID = a.op, a.resourceID, a.objectID
	if a.claims != nil {
		ri.setClaims(*a.claims)
	}
}

type insightsResults struct {
	QueryResultsURI       string               `json:"queryResultsUri,omitempty"`
	NonCompliantResources int                  `json:"nonCompliantResources"`
	NonCompliantPolicies  int                  `json:"nonCompliantPolicies,omitempty"`
	ResourceDetails       []service.StateCount `json:"resourceDetails"`
	PolicyDetails         []service.StateCount `json:"policyDetails,omitempty"`
	PolicyGroupDetails    []service.StateCount `json:"policyGroupDetails,omitempty"`
}

func (a *armReq) summarizePolicyStates(scope string) {
	sum, err := a.s.svc.SummarizePolicyStates(a.ctx, scope)
	if err != nil {
		a.fail(err)
		return
	}
	type defSummary struct {
		PolicyDefinitionReferenceID string          `json:"policyDefinitionReferenceId"`
		PolicyDefinitionID          string          `json:"policyDefinitionId"`
		Effect                      string          `json:"effect"`
		Results                     insightsResults `json:"results"`
	}
	type asgSummary struct {
		PolicyAssignmentID    string          `json:"policyAssignmentId"`
		PolicySetDefinitionID string          `json:"policySetDefinitionId"`
		Results               insightsResults `json:"results"`
		PolicyDefinitions     []defSummary    `json:"policyDefinitions"`
		PolicyGroups          []any           `json:"policyGroups"`
	}
	queryURI := a.s.cfg.PublicURL + strings.TrimSuffix(scope, "/") + "/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?api-version=2019-10-01"
	asgs := make([]asgSummary, 0, len(sum.Assignments))
	for _, as := range sum.Assignments {
		res := insightsResults{NonCompliantResources: as.NonCompliantResources, ResourceDetails: as.ResourceDetails}
		asgs = append(asgs, asgSummary{PolicyAssignmentID: as.PolicyAssignmentID, Results: res, PolicyGroups: []any{},
			PolicyDefinitions: []defSummary{{PolicyDefinitionID: as.PolicyDefinitionID, Effect: as.Effect, Results: res}}})
	}
	out := map[string]any{"@odata.context": a.s.cfg.PublicURL + "/providers/Microsoft.PolicyInsights/$metadata#summary", "@odata.count": 1,
		"value": []any{map[string]any{"@odata.id": nil, "results": insightsResults{QueryResultsURI: queryURI, NonCompliantResources: sum.NonCompliantResources,
			NonCompliantPolicies: sum.NonCompliantPolicies, ResourceDetails: sum.ResourceDetails, PolicyDetails: sum.PolicyDetails,
			PolicyGroupDetails: []service.StateCount{}}, "policyAssignments": asgs}}}
	writeJSON(a.w, http.StatusOK, out)
}

func (a *armReq) queryPolicyStates(scope string) {
	states, err := a.s.svc.PolicyStates(a.ctx, scope)
	if err != nil {
		a.fail(err)
		return
	}
	if f := a.r.URL.Query().Get("$filter"); strings.EqualFold(strings.ReplaceAll(f, " ", ""), "IsComplianteqfalse") ||
		strings.EqualFold(strings.ReplaceAll(f, " ", ""), "ComplianceStateeq'NonCompliant'") {
		kept := states[:0]
		for _, st := range states {
			if st.ComplianceState == service.StateNonCompliant {
				kept = append(kept, st)
			}
		}
		states = kept
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"@odata.context": a.s.cfg.PublicURL + "/providers/Microsoft.PolicyInsights/$metadata#policyStates/$entity",
		"@odata.count": len(states), "value": states})
}

// triggerPolicyEvaluation answers at once: states are computed when they are read, so there is
// nothing to refresh (Azure runs a scan and answers 202).
func (a *armReq) triggerPolicyEvaluation(scope string) {
	if err := a.s.svc.TriggerPolicyEvaluation(a.ctx, scope); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, map[string]string{"status": "Succeeded"})
}
