// Azure Policy: custom definitions, assignments and exemptions (ARM resources under
// Microsoft.Authorization), kept in memory on every node and enforced in the service's write
// paths (policyenforce.go). Built-in definitions come from package policy.

package service

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/policy"
	"github.com/strongroom/strongroom/internal/store"
)

// Layout (sealed with the system data key):
//
//	arm/policy/def/<lower name>                     a custom definition (subscription scope)
//	arm/policy/asg/<lower scope>!<lower name>       an assignment (PolicyAssignment)
//	arm/policy/exm/<lower scope>!<lower name>       an exemption (PolicyExemption)
const (
	polPrefix    = "arm/policy/"
	polDefPrefix = polPrefix + "def/"
	polAsgPrefix = polPrefix + "asg/"
	polExmPrefix = polPrefix + "exm/"
	maxPolicies  = 1000 // per kind: ARM's limits are in the hundreds
)

// The ARM actions on policy resources.
const (
	ActionPolicyDefinitionsRead   = "Microsoft.Authorization/policyDefinitions/read"
	ActionPolicyDefinitionsWrite  = "Microsoft.Authorization/policyDefinitions/write"
	ActionPolicyDefinitionsDelete = "Microsoft.Authorization/policyDefinitions/delete"
	ActionPolicyAssignmentsRead   = "Microsoft.Authorization/policyAssignments/read"
	ActionPolicyAssignmentsWrite  = "Microsoft.Authorization/policyAssignments/write"
	ActionPolicyAssignmentsDelete = "Microsoft.Authorization/policyAssignments/delete"
	ActionPolicyExemptionsRead    = "Microsoft.Authorization/policyExemptions/read"
	ActionPolicyExemptionsWrite   = "Microsoft.Authorization/policyExemptions/write"
	ActionPolicyExemptionsDelete  = "Microsoft.Authorization/policyExemptions/delete"
	ActionPolicyStatesRead        = "Microsoft.PolicyInsights/policyStates/queryResults/read"
	ActionPolicyStatesSummarize   = "Microsoft.PolicyInsights/policyStates/summarize/read"
	ActionPolicyStatesTrigger     = "Microsoft.PolicyInsights/policyStates/triggerEvaluation/action"
)

// Enforcement modes and exemption categories.
const (
	EnforcementDefault      = "Default"
	EnforcementDoNotEnforce = "DoNotEnforce"
	ExemptionWaiver         = "Waiver"
	ExemptionMitigated      = "Mitigated"
)

// PolicyAssignment is an assignment as stored (the routes shape its ARM form).
type PolicyAssignment struct {
	Name                  string                       `json:"name"`
	Scope                 string                       `json:"scope"` // canonical ARM id
	DisplayName           string                       `json:"displayName,omitempty"`
	Description           string                       `json:"description,omitempty"`
	PolicyDefinitionID    string                       `json:"policyDefinitionId"`
	Parameters            map[string]policy.ParamValue `json:"parameters,omitempty"`
	EnforcementMode       string                       `json:"enforcementMode"`
	NotScopes             []string                     `json:"notScopes,omitempty"`
	NonComplianceMessages []NonComplianceMessage       `json:"nonComplianceMessages,omitempty"`
	Metadata              map[string]any               `json:"metadata,omitempty"`
	CreatedBy             string                       `json:"createdBy,omitempty"`
	CreatedAt             time.Time                    `json:"createdAt"`
	UpdatedAt             time.Time                    `json:"updatedAt"`
}

// NonComplianceMessage is shown with a denial.
type NonComplianceMessage struct {
	Message                     string `json:"message"`
	PolicyDefinitionReferenceID string `json:"policyDefinitionReferenceId,omitempty"`
}

// ID is the assignment's ARM id.
func (a *PolicyAssignment) ID() string {
	return strings.TrimSuffix(a.Scope, "/") + "/providers/Microsoft.Authorization/policyAssignments/" + a.Name
}

// PolicyExemption is an exemption as stored.
type PolicyExemption struct {
	Name                         string         `json:"name"`
	Scope                        string         `json:"scope"`
	PolicyAssignmentID           string         `json:"policyAssignmentId"`
	PolicyDefinitionReferenceIDs []string       `json:"policyDefinitionReferenceIds,omitempty"`
	ExemptionCategory            string         `json:"exemptionCategory"`
	DisplayName                  string         `json:"displayName,omitempty"`
	Description                  string         `json:"description,omitempty"`
	ExpiresOn                    *time.Time     `json:"expiresOn,omitempty"`
	Metadata                     map[string]any `json:"metadata,omitempty"`
	CreatedAt                    time.Time      `json:"createdAt"`
	UpdatedAt                    time.Time      `json:"updatedAt"`
}

// ID is the exemption's ARM id.
func (e *PolicyExemption) ID() string {
	return strings.TrimSuffix(e.Scope, "/") + "/providers/Microsoft.Authorization/policyExemptions/" + e.Name
}

// policyState is the in-memory copy of the policy resources; a change anywhere (a local write
// or a replicated one) marks it stale and the next use reloads it (a few hundred records).
type policyState struct {
	mu      sync.RWMutex
	loaded  bool
	defs    map[string]*policy.Definition // custom, lower name
	asgs    []*compiledAssignment
	exms    []*PolicyExemption
	loadErr error
}

type compiledAssignment struct {
	PolicyAssignment
	def    *policy.Definition
	rule   *policy.Rule
	params map[string]any
	err    error // the definition is gone or no longer fits: the assignment is inert
}

func (s *Service) policyStale() {
	s.policies.mu.Lock()
	s.policies.loaded = false
	s.policies.mu.Unlock()
}

// policyKeysApplied marks the policy state stale when another node changed it.
func (s *Service) policyKeysApplied(keys []string) {
	for _, k := range keys {
		if strings.HasPrefix(k, polPrefix) {
			s.policyStale()
			return
		}
	}
}

// loadedPolicies returns the current assignments and exemptions, reloading them when stale.
func (s *Service) loadedPolicies(ctx context.Context) ([]*compiledAssignment, []*PolicyExemption, error) {
	s.policies.mu.RLock()
	if s.policies.loaded {
		a, e, err := s.policies.asgs, s.policies.exms, s.policies.loadErr
		s.policies.mu.RUnlock()
		return a, e, err
	}
	s.policies.mu.RUnlock()
	defs := map[string]*policy.Definition{}
	var asgs []*compiledAssignment
	var exms []*PolicyExemption
	var loadErr error
	err := s.st.Scan(ctx, polPrefix, "", func(key string, raw []byte) bool {
		var into any
		var def *policy.Definition
		switch {
		case strings.HasPrefix(key, polDefPrefix):
			def = &policy.Definition{}
			into = def
		case strings.HasPrefix(key, polAsgPrefix):
			a := &compiledAssignment{}
			into = &a.PolicyAssignment
			asgs = append(asgs, a)
		case strings.HasPrefix(key, polExmPrefix):
			e := &PolicyExemption{}
			into = e
			exms = append(exms, e)
		default:
			return true
		}
		if loadErr = s.open(ctx, keyring.SystemKeyID, key, raw, into); loadErr != nil {
			return false
		}
		if def != nil {
			defs[strings.ToLower(def.Name)] = def
		}
		return true
	})
	if err == nil {
		err = loadErr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading policies: %w", err)
	}
	for _, a := range asgs {
		a.def, a.err = s.definitionByID(a.PolicyDefinitionID, defs)
		if a.err == nil {
			if a.rule, a.err = a.def.Compile(); a.err == nil {
				a.params, a.err = a.def.Params(a.Parameters)
			}
		}
	}
	s.policies.mu.Lock()
	s.policies.defs, s.policies.asgs, s.policies.exms, s.policies.loaded = defs, asgs, exms, true
	s.policies.mu.Unlock()
	return asgs, exms, nil
}

// definitionByID finds a built-in ("/providers/Microsoft.Authorization/policyDefinitions/<guid>")
// or a custom definition (".../subscriptions/<s>/providers/...policyDefinitions/<name>").
func (s *Service) definitionByID(id string, custom map[string]*policy.Definition) (*policy.Definition, error) {
	i := strings.LastIndex(strings.ToLower(id), "/providers/microsoft.authorization/policydefinitions/")
	if i < 0 {
		return nil, newErr(ErrBadRequest, "InvalidPolicyDefinitionId", "", "The policy definition id '%s' is not valid.", id)
	}
	name, prefix := id[i+len("/providers/microsoft.authorization/policydefinitions/"):], id[:i]
	if prefix == "" {
		if d, ok := policy.BuiltIn(name); ok {
			return &d, nil
		}
	} else if strings.EqualFold(prefix, s.SubscriptionScope()) {
		if d, ok := custom[strings.ToLower(name)]; ok {
			c := *d
			return &c, nil
		}
	}
	return nil, newErr(ErrNotFound, "PolicyDefinitionNotFound", "", "The policy definition '%s' could not be found.", id)
}

func (s *Service) customDefinitions(ctx context.Context) (map[string]*policy.Definition, error) {
	if _, _, err := s.loadedPolicies(ctx); err != nil {
		return nil, err
	}
	s.policies.mu.RLock()
	defer s.policies.mu.RUnlock()
	return s.policies.defs, nil
}

var policyNameRE = regexp.MustCompile(`^[^<>*%&:\\?.+/]{1,128}$`)

func validPolicyName(name string) bool {
	return policyNameRE.MatchString(name) && strings.TrimSpace(name) == name
}

func polKey(prefix, scope, name string) string {
	return prefix + strings.ToLower(strings.TrimSuffix(scope, "/")) + "!" + strings.ToLower(name)
}

// policyScope checks an assignment or exemption scope: the subscription, a resource group or a
// vault (Azure also allows management groups, which this server does not have).
func (s *Service) policyScope(scope string) (string, error) {
	ref, err := s.parseScope(scope)
	if err != nil {
		return "", err
	}
	if ref.canonical == "/" || strings.Contains(strings.ToLower(ref.canonical), "/secrets/") {
		return "", newErr(ErrBadRequest, "InvalidScope", "", "The scope '%s' is not valid for a policy: use a subscription, a resource group or a key vault.", scope)
	}
	return ref.canonical, nil
}

// ListPolicyDefinitions returns the built-in definitions and, at the subscription, the custom
// ones.
func (s *Service) ListPolicyDefinitions(ctx context.Context, subscription bool) ([]policy.Definition, error) {
	if err := s.guard(ctx, ActionPolicyDefinitionsRead, false, s.SubscriptionScope()); err != nil {
		return nil, err
	}
	out := slices.Clone(policy.BuiltIns)
	if subscription {
		defs, err := s.customDefinitions(ctx)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(defs))
		for n := range defs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			out = append(out, *defs[n])
		}
	}
	return out, nil
}

// GetPolicyDefinition returns a built-in (custom false) or custom definition by name.
func (s *Service) GetPolicyDefinition(ctx context.Context, name string, custom bool) (policy.Definition, error) {
	if err := s.guard(ctx, ActionPolicyDefinitionsRead, false, s.SubscriptionScope()); err != nil {
		return policy.Definition{}, err
	}
	if d, ok := policy.BuiltIn(name); ok {
		return d, nil
	}
	if custom {
		defs, err := s.customDefinitions(ctx)
		if err != nil {
			return policy.Definition{}, err
		}
		if d, ok := defs[strings.ToLower(name)]; ok {
			return *d, nil
		}
	}
	return policy.Definition{}, newErr(ErrNotFound, "PolicyDefinitionNotFound", "", "The policy definition '%s' could not be found.", name)
}

// PutPolicyDefinition creates or replaces a custom definition at the subscription.
func (s *Service) PutPolicyDefinition(ctx context.Context, name string, props policy.DefinitionProperties) (policy.Definition, bool, error) {
	if err := s.guard(ctx, ActionPolicyDefinitionsWrite, false, s.SubscriptionScope()); err != nil {
		return policy.Definition{}, false, err
	}
	if !validPolicyName(name) {
		return policy.Definition{}, false, newErr(ErrBadRequest, "InvalidPolicyDefinitionName", "", "The policy definition name '%s' is not valid.", name)
	}
	if _, ok := policy.BuiltIn(name); ok {
		return policy.Definition{}, false, newErr(ErrConflict, "PolicyDefinitionConflict", "", "'%s' names a built-in policy definition, which cannot be changed.", name)
	}
	props.PolicyType = "Custom"
	d := policy.Definition{ID: s.SubscriptionScope() + "/providers/" + policy.DefinitionType + "/" + name, Name: name, Type: policy.DefinitionType, Properties: props}
	if _, err := d.Compile(); err != nil {
		return policy.Definition{}, false, newErr(ErrBadRequest, "InvalidPolicyRule", "", "The policy definition is not valid: %v", err)
	}
	defs, err := s.customDefinitions(ctx)
	if err != nil {
		return policy.Definition{}, false, err
	}
	_, existed := defs[strings.ToLower(name)]
	if !existed && len(defs) >= maxPolicies {
		return policy.Definition{}, false, newErr(ErrBadRequest, "PolicyDefinitionLimitExceeded", "", "A subscription may have at most %d custom policy definitions.", maxPolicies)
	}
	if err := s.putPolicyRecord(ctx, polDefPrefix+strings.ToLower(name), d); err != nil {
		return policy.Definition{}, false, err
	}
	return d, !existed, nil
}

// DeletePolicyDefinition deletes a custom definition that no assignment uses.
func (s *Service) DeletePolicyDefinition(ctx context.Context, name string) (bool, error) {
	if err := s.guard(ctx, ActionPolicyDefinitionsDelete, false, s.SubscriptionScope()); err != nil {
		return false, err
	}
	defs, err := s.customDefinitions(ctx)
	if err != nil {
		return false, err
	}
	d, ok := defs[strings.ToLower(name)]
	if !ok {
		return false, nil
	}
	asgs, _, err := s.loadedPolicies(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range asgs {
		if strings.EqualFold(a.PolicyDefinitionID, d.ID) {
			return false, newErr(ErrBadRequest, "PolicyDefinitionInUse", "", "The policy definition '%s' is assigned by '%s'; delete the assignment first.", name, a.ID())
		}
	}
	return true, s.dropPolicyRecord(ctx, polDefPrefix+strings.ToLower(name))
}

func (s *Service) putPolicyRecord(ctx context.Context, key string, v any) error {
	b, err := s.seal(ctx, keyring.SystemKeyID, key, v)
	if err != nil {
		return err
	}
	err = s.apply(ctx, []store.Op{store.Put(key, b)})
	s.policyStale()
	return err
}

// PolicyAssignmentInput is what a PUT of an assignment carries.
type PolicyAssignmentInput struct {
	DisplayName, Description, PolicyDefinitionID, EnforcementMode string
	Parameters                                                    map[string]policy.ParamValue
	NotScopes                                                     []string
	NonComplianceMessages                                         []NonComplianceMessage
	Metadata                                                      map[string]any
}

// PutPolicyAssignment creates or replaces an assignment at scope. It takes effect at once, on
// every node (Azure takes up to 30 minutes).
func (s *Service) PutPolicyAssignment(ctx context.Context, scope, name string, in PolicyAssignmentInput) (PolicyAssignment, bool, error) {
	if err := s.guard(ctx, ActionPolicyAssignmentsWrite, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyAssignment{}, false, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	if !validPolicyName(name) || len(name) > 64 {
		return PolicyAssignment{}, false, newErr(ErrBadRequest, "InvalidPolicyAssignmentName", "", "The policy assignment name '%s' is not valid.", name)
	}
	switch {
	case in.EnforcementMode == "" || strings.EqualFold(in.EnforcementMode, EnforcementDefault):
		in.EnforcementMode = EnforcementDefault
	case strings.EqualFold(in.EnforcementMode, EnforcementDoNotEnforce):
		in.EnforcementMode = EnforcementDoNotEnforce
	default:
		return PolicyAssignment{}, false, newErr(ErrBadRequest, "InvalidRequestContent", "", "Invalid value for properties.enforcementMode: '%s' is not Default or DoNotEnforce.", in.EnforcementMode)
	}
	defs, err := s.customDefinitions(ctx)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	def, err := s.definitionByID(in.PolicyDefinitionID, defs)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	if _, err := def.Params(in.Parameters); err != nil {
		return PolicyAssignment{}, false, newErr(ErrBadRequest, "InvalidPolicyParameters", "", "The policy assignment's parameters are not valid: %v", err)
	}
	notScopes := make([]string, 0, len(in.NotScopes))
	for _, ns := range in.NotScopes {
		c, err := s.policyScope(ns)
		if err != nil {
			return PolicyAssignment{}, false, err
		}
		notScopes = append(notScopes, c)
	}
	key := polKey(polAsgPrefix, canon, name)
	asgs, _, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	now := s.now().UTC()
	a := PolicyAssignment{Name: name, Scope: canon, DisplayName: in.DisplayName, Description: in.Description,
		PolicyDefinitionID: def.ID, Parameters: in.Parameters, EnforcementMode: in.EnforcementMode, NotScopes: notScopes,
		NonComplianceMessages: in.NonComplianceMessages, Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now}
	if c, ok := CallerFrom(ctx); ok {
		a.CreatedBy = c.ObjectID
	}
	created := true
	for _, old := range asgs {
		if strings.EqualFold(old.Scope, canon) && strings.EqualFold(old.Name, name) {
			created, a.CreatedAt, a.CreatedBy = false, old.CreatedAt, old.CreatedBy
		}
	}
	if created && len(asgs) >= maxPolicies {
		return PolicyAssignment{}, false, newErr(ErrBadRequest, "PolicyAssignmentLimitExceeded", "", "At most %d policy assignments are allowed.", maxPolicies)
	}
	if err := s.putPolicyRecord(ctx, key, a); err != nil {
		return PolicyAssignment{}, false, err
	}
	return a, created, nil
}

// GetPolicyAssignment returns the assignment name at scope.
func (s *Service) GetPolicyAssignment(ctx context.Context, scope, name string) (PolicyAssignment, error) {
	if err := s.guard(ctx, ActionPolicyAssignmentsRead, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyAssignment{}, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyAssignment{}, err
	}
	asgs, _, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyAssignment{}, err
	}
	for _, a := range asgs {
		if strings.EqualFold(a.Scope, canon) && strings.EqualFold(a.Name, name) {
			return a.PolicyAssignment, nil
		}
	}
	return PolicyAssignment{}, newErr(ErrNotFound, "PolicyAssignmentNotFound", "", "The policy assignment '%s' is not found.", name)
}

// ListPolicyAssignments returns the assignments that apply at scope: those at it, above it
// and, for the subscription, below it (as Azure's list at a scope does with no filter).
func (s *Service) ListPolicyAssignments(ctx context.Context, scope string) ([]PolicyAssignment, error) {
	if err := s.guard(ctx, ActionPolicyAssignmentsRead, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return nil, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return nil, err
	}
	asgs, _, err := s.loadedPolicies(ctx)
	if err != nil {
		return nil, err
	}
	out := []PolicyAssignment{}
	for _, a := range asgs {
		if authz.ScopeContains(a.Scope, canon) || authz.ScopeContains(canon, a.Scope) {
			out = append(out, a.PolicyAssignment)
		}
	}
	slices.SortFunc(out, func(x, y PolicyAssignment) int {
		return strings.Compare(strings.ToLower(x.ID()), strings.ToLower(y.ID()))
	})
	return out, nil
}

// DeletePolicyAssignment deletes an assignment; found is false when there was none.
func (s *Service) DeletePolicyAssignment(ctx context.Context, scope, name string) (PolicyAssignment, bool, error) {
	if err := s.guard(ctx, ActionPolicyAssignmentsDelete, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyAssignment{}, false, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	asgs, _, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyAssignment{}, false, err
	}
	for _, a := range asgs {
		if strings.EqualFold(a.Scope, canon) && strings.EqualFold(a.Name, name) {
			return a.PolicyAssignment, true, s.dropPolicyRecord(ctx, polKey(polAsgPrefix, canon, name))
		}
	}
	return PolicyAssignment{}, false, nil
}

// PolicyExemptionInput is what a PUT of an exemption carries.
type PolicyExemptionInput struct {
	PolicyAssignmentID, ExemptionCategory, DisplayName, Description string
	PolicyDefinitionReferenceIDs                                    []string
	ExpiresOn                                                       *time.Time
	Metadata                                                        map[string]any
}

// PutPolicyExemption creates or replaces an exemption at scope (a vault or higher: Key Vault's
// exemptions cannot name one secret).
func (s *Service) PutPolicyExemption(ctx context.Context, scope, name string, in PolicyExemptionInput) (PolicyExemption, bool, error) {
	if err := s.guard(ctx, ActionPolicyExemptionsWrite, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyExemption{}, false, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyExemption{}, false, err
	}
	if !validPolicyName(name) || len(name) > 64 {
		return PolicyExemption{}, false, newErr(ErrBadRequest, "InvalidPolicyExemptionName", "", "The policy exemption name '%s' is not valid.", name)
	}
	switch {
	case strings.EqualFold(in.ExemptionCategory, ExemptionWaiver):
		in.ExemptionCategory = ExemptionWaiver
	case strings.EqualFold(in.ExemptionCategory, ExemptionMitigated):
		in.ExemptionCategory = ExemptionMitigated
	default:
		return PolicyExemption{}, false, newErr(ErrBadRequest, "InvalidRequestContent", "", "Invalid value for properties.exemptionCategory: '%s' is not Waiver or Mitigated.", in.ExemptionCategory)
	}
	asgs, exms, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyExemption{}, false, err
	}
	var target *compiledAssignment
	for _, a := range asgs {
		if strings.EqualFold(a.ID(), in.PolicyAssignmentID) {
			target = a
		}
	}
	if target == nil {
		return PolicyExemption{}, false, newErr(ErrNotFound, "PolicyAssignmentNotFound", "", "The policy assignment '%s' is not found.", in.PolicyAssignmentID)
	}
	if !authz.ScopeContains(target.Scope, canon) {
		return PolicyExemption{}, false, newErr(ErrBadRequest, "InvalidPolicyExemptionScope", "", "The exemption scope '%s' is not within the assignment's scope '%s'.", canon, target.Scope)
	}
	now := s.now().UTC()
	e := PolicyExemption{Name: name, Scope: canon, PolicyAssignmentID: target.ID(), PolicyDefinitionReferenceIDs: in.PolicyDefinitionReferenceIDs,
		ExemptionCategory: in.ExemptionCategory, DisplayName: in.DisplayName, Description: in.Description, ExpiresOn: in.ExpiresOn,
		Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now}
	created := true
	for _, old := range exms {
		if strings.EqualFold(old.Scope, canon) && strings.EqualFold(old.Name, name) {
			created, e.CreatedAt = false, old.CreatedAt
		}
	}
	if created && len(exms) >= maxPolicies {
		return PolicyExemption{}, false, newErr(ErrBadRequest, "PolicyExemptionLimitExceeded", "", "At most %d policy exemptions are allowed.", maxPolicies)
	}
	if err := s.putPolicyRecord(ctx, polKey(polExmPrefix, canon, name), e); err != nil {
		return PolicyExemption{}, false, err
	}
	return e, created, nil
}

// GetPolicyExemption returns the exemption name at scope.
func (s *Service) GetPolicyExemption(ctx context.Context, scope, name string) (PolicyExemption, error) {
	if err := s.guard(ctx, ActionPolicyExemptionsRead, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyExemption{}, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyExemption{}, err
	}
	_, exms, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyExemption{}, err
	}
	for _, e := range exms {
		if strings.EqualFold(e.Scope, canon) && strings.EqualFold(e.Name, name) {
			return *e, nil
		}
	}
	return PolicyExemption{}, newErr(ErrNotFound, "PolicyExemptionNotFound", "", "The policy exemption '%s' is not found.", name)
}

// ListPolicyExemptions returns the exemptions at, above and below scope.
func (s *Service) ListPolicyExemptions(ctx context.Context, scope string) ([]PolicyExemption, error) {
	if err := s.guard(ctx, ActionPolicyExemptionsRead, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return nil, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return nil, err
	}
	_, exms, err := s.loadedPolicies(ctx)
	if err != nil {
		return nil, err
	}
	out := []PolicyExemption{}
	for _, e := range exms {
		if authz.ScopeContains(e.Scope, canon) || authz.ScopeContains(canon, e.Scope) {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(x, y PolicyExemption) int {
		return strings.Compare(strings.ToLower(x.ID()), strings.ToLower(y.ID()))
	})
	return out, nil
}

// DeletePolicyExemption deletes an exemption; found is false when there was none.
func (s *Service) DeletePolicyExemption(ctx context.Context, scope, name string) (PolicyExemption, bool, error) {
	if err := s.guard(ctx, ActionPolicyExemptionsDelete, false, scopeOrRoot(scope)); err != nil { // first, so refusals look alike
		return PolicyExemption{}, false, err
	}
	canon, err := s.policyScope(scope)
	if err != nil {
		return PolicyExemption{}, false, err
	}
	_, exms, err := s.loadedPolicies(ctx)
	if err != nil {
		return PolicyExemption{}, false, err
	}
	for _, e := range exms {
		if strings.EqualFold(e.Scope, canon) && strings.EqualFold(e.Name, name) {
			return *e, true, s.dropPolicyRecord(ctx, polKey(polExmPrefix, canon, name))
		}
	}
	return PolicyExemption{}, false, nil
}

// dropPolicyRecord deletes a definition, assignment or exemption (settings, never a value).
func (s *Service) dropPolicyRecord(ctx context.Context, key string) error {
	err := s.apply(ctx, []store.Op{store.Delete(key)})
	s.policyStale()
	return err
}
