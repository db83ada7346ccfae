package httpapi

// Role management policies and role management policy assignments of just-in-time elevation:
// their wire shapes (rules in ARM's form) and handlers (list, read, PATCH of the rules).

import (
	"net/http"
	"strings"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
)

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
		a.fail(errNoProperties)
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
