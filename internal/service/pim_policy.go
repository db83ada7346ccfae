package service

// Role management policies of just-in-time elevation: their $filter, lists and reads (with the
// effective settings at the scope), and the PATCH that changes their rules.

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

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

// RolePolicy is a role management policy with the effective settings at its scope (the
// strictest of it and the policies of the role above it).
type RolePolicy struct {
	rbac.Policy
	RoleName  string
	Effective rbac.Policy
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
	for _, r := range rules {
		if err := s.applyPolicyRule(&p, r); err != nil {
			return RolePolicy{}, err // nothing is stored: a PATCH applies whole or not at all
		}
	}
	if _, err := roles.PutPolicy(ctx, p, c.ObjectID); err != nil {
		return RolePolicy{}, err
	}
	return s.rolePolicy(roles, scope, roleID), nil
}

// invalidRule is the refusal of a policy rule this server cannot accept.
func invalidRule(format string, args ...any) error {
	return newErr(ErrBadRequest, "InvalidRoleManagementPolicyRule", "", format, args...)
}

// applyPolicyRule changes p as r asks, or says why it cannot.
func (s *Service) applyPolicyRule(p *rbac.Policy, r PolicyRuleInput) error {
	switch {
	case strings.EqualFold(r.ID, RuleExpirationAdminEligibility), strings.EqualFold(r.ID, RuleExpirationEndUser):
		return applyExpirationRule(p, r)
	case strings.EqualFold(r.ID, RuleEnablementEndUser):
		return applyEnablementRule(p, r)
	case strings.EqualFold(r.ID, RuleApprovalEndUser):
		return s.applyApprovalRule(p, r)
	case strings.HasPrefix(strings.ToLower(r.ID), "notification_"):
		return nil // accepted and ignored: this server sends no notifications
	}
	return invalidRule("Rule '%s' is not supported; this server enforces %s, %s, %s and %s.", r.ID,
		RuleExpirationAdminEligibility, RuleExpirationEndUser, RuleEnablementEndUser, RuleApprovalEndUser)
}

// applyExpirationRule applies Expiration_Admin_Eligibility or Expiration_EndUser_Assignment.
func applyExpirationRule(p *rbac.Policy, r PolicyRuleInput) error {
	if r.MaximumDuration != nil {
		d, err := rbac.ParseISODuration(*r.MaximumDuration)
		if err != nil || d < 5*time.Minute {
			return invalidRule("Rule '%s': maximumDuration '%s' must be an ISO 8601 duration of at least PT5M.", r.ID, *r.MaximumDuration)
		}
		if strings.EqualFold(r.ID, RuleExpirationEndUser) && d > 24*time.Hour {
			return invalidRule("Rule '%s': an activation lasts at most PT24H.", r.ID)
		}
	}
	if strings.EqualFold(r.ID, RuleExpirationEndUser) {
		if r.IsExpirationRequired != nil && !*r.IsExpirationRequired {
			return invalidRule("Rule '%s': activations always expire.", r.ID)
		}
		if r.MaximumDuration != nil {
			p.ActivationMaximumDuration = *r.MaximumDuration
		}
		return nil
	}
	if r.IsExpirationRequired != nil {
		p.EligibilityExpirationRequired = *r.IsExpirationRequired
	}
	if r.MaximumDuration != nil {
		p.EligibilityMaximumDuration = *r.MaximumDuration
	}
	return nil
}

// applyEnablementRule applies Enablement_EndUser_Assignment.
func applyEnablementRule(p *rbac.Policy, r PolicyRuleInput) error {
	if r.EnabledRules == nil {
		return nil
	}
	var enabled []string
	for _, e := range *r.EnabledRules {
		switch {
		case strings.EqualFold(e, EnableJustification):
			enabled = append(enabled, EnableJustification)
		case strings.EqualFold(e, EnableTicketing):
			enabled = append(enabled, EnableTicketing)
		case strings.EqualFold(e, EnableMFA):
			return newErr(ErrBadRequest, "MultiFactorAuthenticationNotSupported", "",
				"Rule '%s': this server cannot verify multi-factor authentication, so it cannot be required on activation.", r.ID)
		default:
			return invalidRule("Rule '%s': enabled rule '%s' is not one of Justification, Ticketing, MultiFactorAuthentication.", r.ID, e)
		}
	}
	p.EnabledRules = enabled
	return nil
}

// applyApprovalRule applies Approval_EndUser_Assignment (one stage).
func (s *Service) applyApprovalRule(p *rbac.Policy, r PolicyRuleInput) error {
	if r.ApprovalStages > 1 {
		return invalidRule("Rule '%s': only one approval stage is supported.", r.ID)
	}
	if r.IsApprovalRequired != nil {
		p.ApprovalRequired = *r.IsApprovalRequired
	}
	if r.ApprovalTimeoutDays != nil {
		if *r.ApprovalTimeoutDays < 1 || *r.ApprovalTimeoutDays > 30 {
			return invalidRule("Rule '%s': approvalStageTimeOutInDays must be between 1 and 30.", r.ID)
		}
		p.ApprovalTimeoutDays = *r.ApprovalTimeoutDays
	}
	if r.Approvers != nil {
		approvers, err := s.policyApprovers(r)
		if err != nil {
			return err
		}
		p.Approvers = approvers
	}
	return nil
}

// policyApprovers validates the primary approvers r names: at most 50 users or groups, each a
// GUID the directory knows.
func (s *Service) policyApprovers(r PolicyRuleInput) ([]rbac.Approver, error) {
	if len(*r.Approvers) > 50 {
		return nil, invalidRule("Rule '%s': at most 50 primary approvers.", r.ID)
	}
	var approvers []rbac.Approver
	for _, a := range *r.Approvers {
		id, err := uuid.Parse(a.ID)
		if err != nil || len(a.ID) != 36 {
			return nil, invalidRule("Rule '%s': approver id '%s' is not a GUID.", r.ID, a.ID)
		}
		typ := "User"
		switch {
		case a.UserType == "", strings.EqualFold(a.UserType, "User"):
		case strings.EqualFold(a.UserType, "Group"):
			typ = "Group"
		default:
			return nil, invalidRule("Rule '%s': approver userType '%s' is not User or Group.", r.ID, a.UserType)
		}
		if s.opts.PrincipalTypes != nil {
			if _, ok := s.opts.PrincipalTypes(id.String()); !ok {
				return nil, newErr(ErrBadRequest, "PrincipalNotFound", "", "Approver %s does not exist in the directory %s.", id, s.opts.TenantID)
			}
		}
		approvers = append(approvers, rbac.Approver{ID: id.String(), UserType: typ, Description: a.Description})
	}
	return approvers, nil
}
