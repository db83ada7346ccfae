package rbac

// Role management policies of just-in-time elevation: the type and its defaults, storing one,
// reading one, and merging those of a scope and the scopes above it into the effective policy.

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
)

// Approver is a primary approver of a policy (a user or a group).
type Approver struct {
	ID          string `json:"id"`
	UserType    string `json:"userType"` // User or Group
	Description string `json:"description,omitempty"`
}

// Policy is a roleManagementPolicy: the activation settings of one role at one scope.
type Policy struct {
	Scope  string `json:"scope"`
	RoleID string `json:"roleDefinitionId"`
	// Expiration_Admin_Eligibility.
	EligibilityExpirationRequired bool   `json:"eligibilityExpirationRequired"`
	EligibilityMaximumDuration    string `json:"eligibilityMaximumDuration"`
	// Expiration_EndUser_Assignment.
	ActivationMaximumDuration string `json:"activationMaximumDuration"`
	// Enablement_EndUser_Assignment: Justification, Ticketing, MultiFactorAuthentication.
	EnabledRules []string `json:"enabledRules"`
	// Approval_EndUser_Assignment.
	ApprovalRequired    bool       `json:"approvalRequired"`
	ApprovalTimeoutDays int        `json:"approvalTimeoutDays"`
	Approvers           []Approver `json:"approvers,omitempty"`
	UpdatedOn           time.Time  `json:"updatedOn,omitzero"`
	UpdatedBy           string     `json:"updatedBy,omitempty"`
	// Stored reports whether the policy was changed from the defaults.
	Stored bool `json:"-"`
}

// Name is the policy's GUID (PolicyName of its scope and role).
func (p *Policy) Name() string { return PolicyName(p.Scope, p.RoleID) }

// Requires reports whether rule (Justification, Ticketing, MultiFactorAuthentication) is enabled.
func (p *Policy) Requires(rule string) bool {
	for _, r := range p.EnabledRules {
		if strings.EqualFold(r, rule) {
			return true
		}
	}
	return false
}

// policyNamespace derives policy names from (scope, role), so every node and every restart
// names the same policy alike without storing the defaults.
var policyNamespace = uuid.MustParse("9b0f4c1e-3a5d-4e7b-8c2a-1d6e5f4a3b20")

// PolicyName is the GUID of the policy of roleID at scope.
func PolicyName(scope, roleID string) string {
	return uuid.NewSHA1(policyNamespace, []byte(strings.ToLower(strings.TrimRight(scope, "/"))+"|"+strings.ToLower(roleID))).String()
}

// DefaultPolicy is the policy of a role nobody changed: Azure's defaults for resource roles
// (activations of at most 8 hours with a justification and no approval; eligibilities of at
// most a year).
func DefaultPolicy(scope, roleID string) Policy {
	return Policy{Scope: scope, RoleID: strings.ToLower(roleID), EligibilityExpirationRequired: true, EligibilityMaximumDuration: "P365D",
		ActivationMaximumDuration: "PT8H", EnabledRules: []string{"Justification"}, ApprovalTimeoutDays: 1}
}

// PutPolicy stores p as the policy of its (scope, role).
func (s *Service) PutPolicy(ctx context.Context, p Policy, by string) (Policy, error) {
	p.RoleID = strings.ToLower(p.RoleID)
	p.UpdatedOn, p.UpdatedBy = s.opts.Now().UTC(), by
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var b batch
	if err := b.put(s, ctx, prefixPolicy+p.Name(), &policyRecord{V: recordVersion, Policy: p}, false); err != nil {
		return Policy{}, err
	}
	if err := s.apply(ctx, &b, "storing a role management policy"); err != nil {
		return Policy{}, err
	}
	p.Stored = true
	return p, nil
}

// Policy returns the policy of roleID at scope: the stored one, or the defaults.
func (s *Service) Policy(scope, roleID string) Policy {
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	if p, ok := s.pim.policies[PolicyName(scope, roleID)]; ok {
		return clonePolicy(p)
	}
	return DefaultPolicy(scope, roleID)
}

func clonePolicy(p *Policy) Policy {
	c := *p
	c.EnabledRules = append([]string(nil), p.EnabledRules...)
	c.Approvers = append([]Approver(nil), p.Approvers...)
	return c
}

// EffectivePolicy merges the policies of roleID at scope and every scope above it, the
// strictest setting winning: the shortest maximum durations, every enabled rule, approval if
// any requires it (by any of their approvers, within the shortest timeout). An administrator of
// a lower scope cannot loosen what a higher scope requires.
func (s *Service) EffectivePolicy(scope, roleID string) Policy {
	eff := s.Policy(scope, roleID)
	eff.Stored = false
	approvals := eff.ApprovalRequired
	if !approvals {
		eff.Approvers, eff.ApprovalTimeoutDays = nil, 0
	}
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	for _, p := range s.pim.policies {
		if !strings.EqualFold(p.RoleID, roleID) || sameScopeFold(p.Scope, scope) || !authz.ScopeContains(p.Scope, scope) {
			continue
		}
		eff.EligibilityExpirationRequired = eff.EligibilityExpirationRequired || p.EligibilityExpirationRequired
		eff.EligibilityMaximumDuration = shorter(eff.EligibilityMaximumDuration, p.EligibilityMaximumDuration)
		eff.ActivationMaximumDuration = shorter(eff.ActivationMaximumDuration, p.ActivationMaximumDuration)
		for _, r := range p.EnabledRules {
			if !eff.Requires(r) {
				eff.EnabledRules = append(eff.EnabledRules, r)
			}
		}
		if p.ApprovalRequired {
			if !approvals || p.ApprovalTimeoutDays < eff.ApprovalTimeoutDays {
				eff.ApprovalTimeoutDays = p.ApprovalTimeoutDays
			}
			approvals = true
			eff.Approvers = append(eff.Approvers, p.Approvers...)
		}
	}
	eff.ApprovalRequired = approvals
	return eff
}

func sameScopeFold(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// shorter returns the shorter of two ISO 8601 durations (an unreadable one counts as zero:
// nothing is longer than a limit nobody can read).
func shorter(a, b string) string {
	da, errA := ParseISODuration(a)
	db, errB := ParseISODuration(b)
	switch {
	case errA != nil:
		return a
	case errB != nil:
		return b
	case db < da:
		return b
	}
	return a
}

// Policies returns the stored policies keep accepts.
func (s *Service) Policies(keep func(*Policy) bool) []Policy {
	s.pim.mu.RLock()
	var out []Policy
	for _, p := range s.pim.policies {
		if keep(p) {
			out = append(out, clonePolicy(p))
		}
	}
	s.pim.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
