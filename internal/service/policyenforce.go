// Enforcing policy assignments on writes: a secret version being set, updated, restored or
// recovered, and a vault being created, updated or recovered. Deny refuses the write before
// anything is written; Audit and DoNotEnforce let it through; every outcome goes to the
// request's decision slot, so its audit record names it. Reads are never blocked.

package service

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/policy"
)

// PolicyOutcome is one assignment's verdict on a write, as the audit record shows it.
type PolicyOutcome struct {
	AssignmentID string `json:"policyAssignmentId"`
	DefinitionID string `json:"policyDefinitionId"`
	Effect       string `json:"effect"`
	// State is NonCompliant (the rule matched), Compliant or Exempt.
	State  string `json:"complianceState"`
	Denied bool   `json:"denied,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Compliance states.
const (
	StateCompliant    = "Compliant"
	StateNonCompliant = "NonCompliant"
	StateExempt       = "Exempt"
)

// evaluate runs every assignment that applies to the resource resourceID (of policy type typ)
// and returns the outcomes and the assignment that denies it, if any.
func (s *Service) evaluate(ctx context.Context, resourceID, typ string, res policy.Resource, now time.Time) ([]PolicyOutcome, *compiledAssignment, string, error) {
	out, deny, why, _, err := s.evaluateAll(ctx, resourceID, typ, res, now, true)
	return out, deny, why, err
}

// evaluateAll is evaluate that also returns the enforced Modify assignments that matched;
// record false leaves the decision slot alone (a first pass that Modify may change).
func (s *Service) evaluateAll(ctx context.Context, resourceID, typ string, res policy.Resource, now time.Time, record bool) ([]PolicyOutcome, *compiledAssignment, string, []*compiledAssignment, error) {
	asgs, exms, err := s.loadedPolicies(ctx)
	if err != nil || len(asgs) == 0 {
		return nil, nil, "", nil, err
	}
	var out []PolicyOutcome
	var deny *compiledAssignment
	var mods []*compiledAssignment
	var why string
	for _, a := range asgs {
		if a.err != nil || !authz.ScopeContains(a.Scope, resourceID) || excluded(a.NotScopes, resourceID) || !policy.AppliesTo(a.def.Properties.Mode, typ) {
			continue
		}
		o := PolicyOutcome{AssignmentID: a.ID(), DefinitionID: a.def.ID}
		if exempt(exms, a.ID(), resourceID, now) {
			o.State = StateExempt
			out = append(out, o)
			continue
		}
		r, err := a.rule.Eval(&policy.Env{Resource: res, Params: a.params, Now: now})
		if err != nil {
			// A rule that cannot be evaluated (a custom one past its bounds) blocks nothing.
			if s.opts.Log != nil {
				s.opts.Log.Warn("policy rule failed to evaluate", "assignment", a.ID(), "err", err)
			}
			continue
		}
		o.Effect = r.Effect
		switch {
		case r.Effect == "Disabled":
			continue
		case r.Effect == "AuditIfNotExists" || r.Effect == "DeployIfNotExists":
			// The related resource these look for is the server's own audit log (resource logs),
			// which is always on.
			o.State = StateCompliant
		case r.Matched:
			o.State, o.Reason = StateNonCompliant, r.Reason
			if r.Effect == "Deny" && a.EnforcementMode != EnforcementDoNotEnforce && deny == nil {
				o.Denied, deny, why = true, a, r.Reason
			}
			if r.Effect == "Modify" && a.EnforcementMode != EnforcementDoNotEnforce {
				mods = append(mods, a)
			}
		default:
			o.State = StateCompliant
		}
		out = append(out, o)
	}
	if slot := DecisionFrom(ctx); slot != nil && record {
		slot.Policies = append(slot.Policies, out...)
	}
	return out, deny, why, mods, nil
}

func excluded(notScopes []string, resourceID string) bool {
	for _, ns := range notScopes {
		if authz.ScopeContains(ns, resourceID) {
			return true
		}
	}
	return false
}

func exempt(exms []*PolicyExemption, assignmentID, resourceID string, now time.Time) bool {
	for _, e := range exms {
		if strings.EqualFold(e.PolicyAssignmentID, assignmentID) && authz.ScopeContains(e.Scope, resourceID) && (e.ExpiresOn == nil || e.ExpiresOn.After(now)) {
			return true
		}
	}
	return false
}

// secretResource is a secret version as Data rules see it.
func secretResource(name string, sv *SecretVersion) policy.Resource {
	f := policy.SecretFields{Name: name, Created: time.Unix(sv.Created, 0), Updated: time.Unix(sv.Updated, 0),
		ContentType: sv.ContentType, Enabled: sv.Enabled, Tags: sv.Tags}
	if sv.Expires != nil {
		t := time.Unix(*sv.Expires, 0)
		f.Expires = &t
	}
	if sv.NotBefore != nil {
		t := time.Unix(*sv.NotBefore, 0)
		f.NotBefore = &t
	}
	return policy.SecretResource(f)
}

// enforceSecret applies the assignments to a version of name about to be written; a Deny is
// Key Vault's 403 with inner code RequestDisallowedByPolicy.
func (s *Service) enforceSecret(ctx context.Context, v *Vault, name string, sv *SecretVersion) error {
	if !s.anyPolicies(ctx) {
		return nil
	}
	_, deny, why, err := s.evaluate(ctx, s.ResourceID(v)+"/secrets/"+name, policy.TypeSecret, secretResource(name, sv), s.now())
	if err != nil || deny == nil {
		return err
	}
	return newErr(ErrForbidden, "Forbidden", "RequestDisallowedByPolicy", "Request was denied by policy. Assignment: '%s' (%s). Definition: '%s' (%s). Reason: %s.%s",
		displayOr(deny.DisplayName, deny.Name), deny.ID(), deny.def.Properties.DisplayName, deny.def.ID, why, complianceMessage(deny))
}

// enforceVault applies the assignments to a vault about to be written (createMode "recover"
// when it is being recovered, which the built-ins exempt); a Deny is ARM's 403
// RequestDisallowedByPolicy with its PolicyViolation details.
func (s *Service) enforceVault(ctx context.Context, v *Vault, createMode string) error {
	if !s.anyPolicies(ctx) {
		return nil
	}
	id := s.rgID(v.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + v.Name
	// Modify runs first, as in Azure: its changes are what Deny and Audit then judge.
	_, _, _, mods, err := s.evaluateAll(ctx, id, policy.TypeVault, s.vaultFieldsResource(v, createMode), s.now(), false)
	if err != nil {
		return err
	}
	for _, a := range mods {
		if err := modifyVault(v, a); err != nil {
			return err
		}
	}
	_, deny, why, err := s.evaluate(ctx, id, policy.TypeVault, s.vaultFieldsResource(v, createMode), s.now())
	if err != nil || deny == nil {
		return err
	}
	return policyDeniedVault(v, deny, why)
}

// vaultFieldsResource is v as Indexed rules see it, being written with createMode.
func (s *Service) vaultFieldsResource(v *Vault, createMode string) policy.Resource {
	p := &v.Properties
	f := policy.VaultFields{Name: v.Name, Location: v.Location, CreateMode: createMode, SoftDelete: p.EnableSoftDelete,
		PurgeProtection: p.EnablePurgeProtection, RBAC: p.EnableRbacAuthorization, PublicAccess: p.PublicNetworkAccess,
		RetentionDays: p.SoftDeleteRetentionInDays, Tags: v.Tags}
	if p.Sku != nil {
		f.Sku = p.Sku.Name
	}
	if n := p.NetworkAcls; n != nil {
		f.DefaultAction = n.DefaultAction
		for _, r := range n.IPRules {
			f.IPRules = append(f.IPRules, r.Value)
		}
	}
	if f.DefaultAction == "" {
		f.DefaultAction = "Allow"
	}
	return policy.VaultResource(f)
}

// policyDeniedVault is ARM's answer to a vault write a Deny refuses.
func policyDeniedVault(v *Vault, deny *compiledAssignment, why string) error {
	ids, _ := json.Marshal([]map[string]any{{
		"policyAssignment": map[string]string{"name": displayOr(deny.DisplayName, deny.Name), "id": deny.ID()},
		"policyDefinition": map[string]string{"name": deny.def.Properties.DisplayName, "id": deny.def.ID},
	}})
	e := newErr(ErrForbidden, "RequestDisallowedByPolicy", "", "Resource '%s' was disallowed by policy. Reasons: '%s'. Policy identifiers: '%s'.%s",
		v.Name, why, ids, complianceMessage(deny))
	e.Target = v.Name
	e.AdditionalInfo = []map[string]any{{"type": "PolicyViolation", "info": map[string]any{
		"policyDefinitionDisplayName": deny.def.Properties.DisplayName, "policyDefinitionId": deny.def.ID,
		"policyDefinitionName": deny.def.Name, "policyDefinitionEffect": "Deny",
		"policyAssignmentDisplayName": displayOr(deny.DisplayName, deny.Name), "policyAssignmentId": deny.ID(),
		"policyAssignmentName": deny.Name, "policyAssignmentScope": deny.Scope,
		"evaluationDetails": map[string]any{"reason": why},
	}}}
	return e
}

// anyPolicies is the cheap test the write paths make first: no assignment, no evaluation.
func (s *Service) anyPolicies(ctx context.Context) bool {
	asgs, _, err := s.loadedPolicies(ctx)
	return err != nil || len(asgs) > 0
}

func displayOr(display, name string) string {
	if display != "" {
		return display
	}
	return name
}

func complianceMessage(a *compiledAssignment) string {
	for _, m := range a.NonComplianceMessages {
		if m.PolicyDefinitionReferenceID == "" && m.Message != "" {
			return " " + m.Message
		}
	}
	return ""
}

// modifyVault applies a Modify assignment's operations to v: addOrReplace and remove of the
// vault aliases a Modify built-in writes (the firewall's default action, public network
// access, soft delete, purge protection, the permission model) and of tags.
func modifyVault(v *Vault, a *compiledAssignment) error {
	var details struct {
		Operations []struct {
			Operation string `json:"operation"`
			Field     string `json:"field"`
			Value     any    `json:"value"`
		} `json:"operations"`
	}
	if len(a.rule.Details) == 0 || json.Unmarshal(a.rule.Details, &details) != nil {
		return nil // a Modify without operations changes nothing
	}
	p := &v.Properties
	for _, op := range details.Operations {
		remove := strings.EqualFold(op.Operation, "remove")
		if !remove && !strings.EqualFold(op.Operation, "addOrReplace") && !strings.EqualFold(op.Operation, "add") {
			continue
		}
		str, _ := op.Value.(string)
		b, isBool := op.Value.(bool)
		field := strings.ToLower(op.Field)
		switch {
		case field == "microsoft.keyvault/vaults/networkacls.defaultaction":
			if p.NetworkAcls == nil {
				p.NetworkAcls = &NetworkRuleSet{}
			}
			acls := *p.NetworkAcls
			if remove {
				acls.DefaultAction = ""
			} else if v, ok := canonical(str, "Allow", "Deny"); ok {
				acls.DefaultAction = v
			}
			p.NetworkAcls = &acls
		case field == "microsoft.keyvault/vaults/publicnetworkaccess":
			if v, ok := canonical(str, "Enabled", "Disabled"); ok && !remove {
				p.PublicNetworkAccess = v
			}
		case field == "microsoft.keyvault/vaults/enablesoftdelete" && isBool && !remove:
			p.EnableSoftDelete = ptr(b)
		case field == "microsoft.keyvault/vaults/enablepurgeprotection" && isBool && b && !remove:
			p.EnablePurgeProtection = ptr(true) // one way, as in Key Vault
		case field == "microsoft.keyvault/vaults/enablerbacauthorization" && isBool && !remove:
			p.EnableRbacAuthorization = ptr(b)
		case strings.HasPrefix(field, "tags['") && strings.HasSuffix(field, "']"):
			name := op.Field[len("tags['") : len(op.Field)-2]
			tags := maps.Clone(v.Tags)
			if tags == nil {
				tags = map[string]string{}
			}
			if remove {
				delete(tags, name)
			} else {
				tags[name] = str
			}
			v.Tags = tags
		}
	}
	return nil
}
