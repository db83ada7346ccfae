// Compliance: the state of every vault and secret in a scope against the assignments that
// apply to it, computed when asked (PolicyInsights' policyStates). Nothing runs in the
// background: a report costs one pass over the vaults and the secrets' heads in its scope,
// and is always current (Azure's lags up to a day).

package service

import (
	"context"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/policy"
)

// PolicyState is one resource's state against one assignment (PolicyInsights' PolicyState).
type PolicyState struct {
	Timestamp              time.Time `json:"timestamp"`
	ResourceID             string    `json:"resourceId"`
	ResourceType           string    `json:"resourceType"`
	ResourceGroup          string    `json:"resourceGroup"`
	ResourceLocation       string    `json:"resourceLocation,omitempty"`
	PolicyAssignmentID     string    `json:"policyAssignmentId"`
	PolicyAssignmentName   string    `json:"policyAssignmentName"`
	PolicyAssignmentScope  string    `json:"policyAssignmentScope"`
	PolicyDefinitionID     string    `json:"policyDefinitionId"`
	PolicyDefinitionName   string    `json:"policyDefinitionName"`
	PolicyDefinitionAction string    `json:"policyDefinitionAction"`
	ComplianceState        string    `json:"complianceState"`
	IsCompliant            bool      `json:"isCompliant"`
	SubscriptionID         string    `json:"subscriptionId"`
}

// PolicyStates evaluates every vault and secret under scope against the assignments that
// apply to them. Soft-deleted vaults and secrets are left out, as Azure leaves them out.
func (s *Service) PolicyStates(ctx context.Context, scope string) ([]PolicyState, error) {
	if err := s.guard(ctx, ActionPolicyStatesRead, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return nil, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return nil, err
	}
	asgs, exms, err := s.loadedPolicies(ctx)
	if err != nil || len(asgs) == 0 {
		return []PolicyState{}, err
	}
	now := s.now()
	var out []PolicyState
	for _, v := range s.vaultSnapshot() {
		vid := s.ResourceID(v)
		if v.Deleted != nil || !(authz.ScopeContains(canon, vid) || authz.ScopeContains(vid, canon)) {
			continue
		}
		row := func(id, typ string, a *compiledAssignment, state, effect string) {
			out = append(out, PolicyState{Timestamp: now.UTC(), ResourceID: id, ResourceType: typ, ResourceGroup: v.ResourceGroup,
				ResourceLocation: v.Location, PolicyAssignmentID: a.ID(), PolicyAssignmentName: a.Name, PolicyAssignmentScope: a.Scope,
				PolicyDefinitionID: a.def.ID, PolicyDefinitionName: a.def.Name, PolicyDefinitionAction: strings.ToLower(effect),
				ComplianceState: state, IsCompliant: state == StateCompliant, SubscriptionID: s.opts.SubscriptionID})
		}
		judge := func(id, typ string, res policy.Resource) {
			for _, a := range asgs {
				if a.err != nil || !authz.ScopeContains(a.Scope, id) || excluded(a.NotScopes, id) || !policy.AppliesTo(a.def.Properties.Mode, typ) {
					continue
				}
				if exempt(exms, a.ID(), id, now) {
					row(id, typ, a, StateExempt, "")
					continue
				}
				r, err := a.rule.Eval(&policy.Env{Resource: res, Params: a.params, Now: now})
				if err != nil || r.Effect == "Disabled" {
					continue
				}
				state := StateCompliant
				if r.Matched && r.Effect != "AuditIfNotExists" && r.Effect != "DeployIfNotExists" {
					state = StateNonCompliant
				}
				row(id, typ, a, state, r.Effect)
			}
		}
		if authz.ScopeContains(canon, vid) {
			judge(vid, policy.TypeVault, s.vaultFieldsResource(v, ""))
		}
		err := s.scanHeads(ctx, v, "", func(name string, raw []byte, _ scannedTip) bool {
			var h secretHead
			if err := s.open(ctx, vaultKeyID(v), headKey(v, name), raw, &h); err != nil || h.Deleted != nil {
				return true // a head that fails to open is reported by reads, not here
			}
			id := vid + "/secrets/" + h.Name
			if authz.ScopeContains(canon, id) {
				item := h.Item
				judge(id, policy.TypeSecret, secretResource(h.Name, &item))
			}
			return ctx.Err() == nil
		})
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PolicySummary is PolicyInsights' summarize answer for one scope.
type PolicySummary struct {
	NonCompliantResources int                 `json:"nonCompliantResources"`
	NonCompliantPolicies  int                 `json:"nonCompliantPolicies"`
	ResourceDetails       []StateCount        `json:"resourceDetails"`
	PolicyDetails         []StateCount        `json:"policyDetails"`
	Assignments           []AssignmentSummary `json:"-"`
}

// StateCount is how many resources (or policies) are in a state.
type StateCount struct {
	ComplianceState string `json:"complianceState"`
	Count           int    `json:"count"`
}

// AssignmentSummary is one assignment's part of a summary.
type AssignmentSummary struct {
	PolicyAssignmentID    string
	PolicyDefinitionID    string
	Effect                string
	NonCompliantResources int
	ResourceDetails       []StateCount
}

// SummarizePolicyStates counts the states PolicyStates reports: a resource is non-compliant
// when any assignment finds it so, exempt when every verdict on it is an exemption.
func (s *Service) SummarizePolicyStates(ctx context.Context, scope string) (PolicySummary, error) {
	if err := s.guard(ctx, ActionPolicyStatesSummarize, false, scopeOrRoot(scope)); err != nil {
		return PolicySummary{}, err
	}
	states, err := s.PolicyStates(ctx, scope)
	if err != nil {
		return PolicySummary{}, err
	}
	perResource := map[string]string{}
	type asgKey struct{ asg, def string }
	perAsg := map[asgKey]map[string]string{} // resource -> state
	var order []asgKey
	effects := map[asgKey]string{}
	for _, st := range states {
		r := strings.ToLower(st.ResourceID)
		perResource[r] = worse(perResource[r], st.ComplianceState)
		k := asgKey{st.PolicyAssignmentID, st.PolicyDefinitionID}
		if perAsg[k] == nil {
			perAsg[k] = map[string]string{}
			order = append(order, k)
		}
		perAsg[k][r] = worse(perAsg[k][r], st.ComplianceState)
		if st.PolicyDefinitionAction != "" {
			effects[k] = st.PolicyDefinitionAction
		}
	}
	sum := PolicySummary{ResourceDetails: counts(perResource)}
	policyStates := map[string]string{}
	for _, k := range order {
		as := AssignmentSummary{PolicyAssignmentID: k.asg, PolicyDefinitionID: k.def, Effect: effects[k], ResourceDetails: counts(perAsg[k])}
		for _, st := range perAsg[k] {
			if st == StateNonCompliant {
				as.NonCompliantResources++
			}
		}
		state := StateCompliant
		if as.NonCompliantResources > 0 {
			state = StateNonCompliant
			sum.NonCompliantPolicies++
		}
		policyStates[k.asg+"|"+k.def] = state
		sum.Assignments = append(sum.Assignments, as)
	}
	for _, st := range perResource {
		if st == StateNonCompliant {
			sum.NonCompliantResources++
		}
	}
	sum.PolicyDetails = counts(policyStates)
	return sum, nil
}

// worse is the state that wins when a resource has two verdicts.
func worse(a, b string) string {
	rank := map[string]int{"": 0, StateExempt: 1, StateCompliant: 2, StateNonCompliant: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func counts(m map[string]string) []StateCount {
	n := map[string]int{}
	for _, st := range m {
		n[st]++
	}
	out := []StateCount{}
	for _, st := range []string{StateCompliant, StateNonCompliant, StateExempt} {
		if n[st] > 0 {
			out = append(out, StateCount{ComplianceState: strings.ToLower(st), Count: n[st]}) // "noncompliant", as summarize spells it
		}
	}
	return out
}

// TriggerPolicyEvaluation is PolicyInsights' triggerEvaluation: states are computed when they
// are read, so it only checks the scope, the caller's right and that the states compute.
func (s *Service) TriggerPolicyEvaluation(ctx context.Context, scope string) error {
	if err := s.guard(ctx, ActionPolicyStatesTrigger, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return err
	}
	_, err := s.PolicyStates(ctx, scope) // checks the scope
	return err
}
