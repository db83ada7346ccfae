package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// policyCommand is az's `policy`: definitions, assignments, exemptions and compliance states
// (docs/policy.md).
func (a *app) policyCommand() *cobra.Command {
	return group(&cobra.Command{Use: "policy", Short: "Manage Azure Policy definitions, assignments, exemptions and compliance"},
		group(&cobra.Command{Use: "definition", Short: "Manage policy definitions"},
			a.policyDefinitionList(), a.policyDefinitionShow(), a.policyDefinitionCreate(), a.policyDefinitionDelete()),
		group(&cobra.Command{Use: "assignment", Short: "Manage policy assignments"},
			a.policyAssignmentCreate(), a.policyScopedList("policyAssignments", "policy assignments"),
			a.policyScopedOne("policyAssignments", "policy assignment", "show", http.MethodGet),
			a.policyScopedOne("policyAssignments", "policy assignment", "delete", http.MethodDelete)),
		group(&cobra.Command{Use: "exemption", Short: "Manage policy exemptions"},
			a.policyExemptionCreate(), a.policyScopedList("policyExemptions", "policy exemptions"),
			a.policyScopedOne("policyExemptions", "policy exemption", "delete", http.MethodDelete)),
		group(&cobra.Command{Use: "state", Short: "Query compliance states"},
			a.policyStateSummarize(), a.policyStateList(), a.policyStateTriggerScan()))
}

const (
	policyAPIVersion   = "2023-04-01"
	insightsAPIVersion = "2019-10-01"
)

// jsonArg reads a JSON argument given inline or as @file.
func jsonArg(flag, v string) (any, error) {
	if v == "" {
		return nil, nil
	}
	raw := []byte(v)
	if strings.HasPrefix(v, "@") {
		var err error
		if raw, err = os.ReadFile(v[1:]); err != nil {
			return nil, fmt.Errorf("reading %s: %w", flag, err)
		}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, usageErrorf("%s is not valid JSON: %v", flag, err)
	}
	return out, nil
}

func (a *app) policyDefinitionPath(s *session, name string) string {
	if name == "" {
		return "/subscriptions/" + s.profile.SubscriptionID + "/providers/Microsoft.Authorization/policyDefinitions"
	}
	return "/subscriptions/" + s.profile.SubscriptionID + "/providers/Microsoft.Authorization/policyDefinitions/" + url.PathEscape(name)
}

func (a *app) policyDefinitionList() *cobra.Command {
	return leaf(&cobra.Command{Use: "list", Short: "List the built-in and custom policy definitions", RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := openSession()
		if err != nil {
			return err
		}
		var out struct {
			Value []any `json:"value"`
		}
		if _, err := s.armJSONAt(cmd.Context(), http.MethodGet, a.policyDefinitionPath(s, ""), policyAPIVersion, nil, &out); err != nil {
			return notFoundOr(err, "policy definitions", "listing policy definitions")
		}
		return a.print(out.Value)
	}})
}

func (a *app) policyDefinitionShow() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{Use: "show", Short: "Show a policy definition (a built-in's GUID or a custom name)", RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := openSession()
		if err != nil {
			return err
		}
		var out any
		if _, err := s.armJSONAt(cmd.Context(), http.MethodGet, a.policyDefinitionPath(s, name), policyAPIVersion, nil, &out); err != nil {
			return notFoundOr(err, "policy definition", "showing the policy definition")
		}
		return a.print(out)
	}})
	c.Flags().StringVarP(&name, "name", "n", "", "the definition's name")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) policyDefinitionCreate() *cobra.Command {
	var name, rules, params, mode, display, desc string
	c := leaf(&cobra.Command{Use: "create", Short: "Create or replace a custom policy definition", RunE: func(cmd *cobra.Command, _ []string) error {
		rule, err := jsonArg("--rules", rules)
		if err != nil {
			return err
		}
		if rule == nil {
			return usageErrorf("the following arguments are required: --rules")
		}
		ps, err := jsonArg("--params", params)
		if err != nil {
			return err
		}
		props := map[string]any{"policyRule": rule, "mode": mode, "displayName": display, "description": desc}
		if ps != nil {
			props["parameters"] = ps
		}
		s, err := openSession()
		if err != nil {
			return err
		}
		var out any
		if _, err := s.armJSONAt(cmd.Context(), http.MethodPut, a.policyDefinitionPath(s, name), policyAPIVersion, map[string]any{"properties": props}, &out); err != nil {
			return err
		}
		return a.print(out)
	}})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "the definition's name")
	f.StringVar(&rules, "rules", "", "the policy rule as JSON ({\"if\": ..., \"then\": ...}), or @file")
	f.StringVar(&params, "params", "", "the parameter definitions as JSON, or @file")
	f.StringVar(&mode, "mode", "Indexed", "All, Indexed or Microsoft.KeyVault.Data")
	f.StringVar(&display, "display-name", "", "display name")
	f.StringVar(&desc, "description", "", "description")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) policyDefinitionDelete() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{Use: "delete", Short: "Delete a custom policy definition", RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := openSession()
		if err != nil {
			return err
		}
		_, err = s.armJSONAt(cmd.Context(), http.MethodDelete, a.policyDefinitionPath(s, name), policyAPIVersion, nil, nil)
		return err
	}})
	c.Flags().StringVarP(&name, "name", "n", "", "the definition's name")
	_ = c.MarkFlagRequired("name")
	return c
}

// policySession opens the session and resolves the scope flags.
func policySession(sf *scopeFlags) (*session, string, error) {
	s, err := openSession()
	if err != nil {
		return nil, "", err
	}
	scope, err := policyScopeOf(s, sf)
	return s, scope, err
}

// policyScopeOf is --scope, or the resource group, or the subscription.
func policyScopeOf(s *session, sf *scopeFlags) (string, error) {
	if sf.scope == "" && sf.resourceGroup == "" {
		return "/subscriptions/" + s.profile.SubscriptionID, nil
	}
	return sf.resolve(s)
}

// definitionID accepts a full definition id, a built-in's GUID or a custom definition's name.
func definitionID(s *session, ref string) string {
	switch {
	case strings.Contains(ref, "/"):
		return ref
	case len(ref) == 36 && strings.Count(ref, "-") == 4:
		return "/providers/Microsoft.Authorization/policyDefinitions/" + ref
	}
	return "/subscriptions/" + s.profile.SubscriptionID + "/providers/Microsoft.Authorization/policyDefinitions/" + ref
}

func (a *app) policyAssignmentCreate() *cobra.Command {
	var name, pol, params, mode, display, desc string
	var notScopes []string
	var sf scopeFlags
	c := leaf(&cobra.Command{Use: "create", Short: "Assign a policy definition at a scope", RunE: func(cmd *cobra.Command, _ []string) error {
		s, scope, err := policySession(&sf)
		if err != nil {
			return err
		}
		ps, err := jsonArg("--params", params)
		if err != nil {
			return err
		}
		props := map[string]any{"policyDefinitionId": definitionID(s, pol), "displayName": display, "description": desc, "enforcementMode": mode}
		if ps != nil {
			props["parameters"] = wrapParams(ps)
		}
		if len(notScopes) > 0 {
			props["notScopes"] = notScopes
		}
		var out any
		path := strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/policyAssignments/" + url.PathEscape(name)
		if _, err := s.armJSONAt(cmd.Context(), http.MethodPut, path, policyAPIVersion, map[string]any{"properties": props}, &out); err != nil {
			return err
		}
		return a.print(out)
	}})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "the assignment's name")
	f.StringVar(&pol, "policy", "", "the definition: its id, a built-in's GUID or a custom name")
	f.StringVarP(&params, "params", "p", "", "parameter values as JSON ({\"effect\": {\"value\": \"Deny\"}} or {\"effect\": \"Deny\"}), or @file")
	f.StringVar(&mode, "enforcement-mode", "Default", "Default or DoNotEnforce")
	f.StringSliceVar(&notScopes, "not-scopes", nil, "scopes the assignment leaves out")
	f.StringVar(&display, "display-name", "", "display name")
	f.StringVar(&desc, "description", "", "description")
	sf.add(c)
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("policy")
	return c
}

// wrapParams turns {"effect": "Deny"} into ARM's {"effect": {"value": "Deny"}}; values already
// in that form pass as they are.
func wrapParams(ps any) any {
	m, ok := ps.(map[string]any)
	if !ok {
		return ps
	}
	out := map[string]any{}
	for k, v := range m {
		if inner, ok := v.(map[string]any); ok && len(inner) == 1 && inner["value"] != nil {
			out[k] = v
		} else {
			out[k] = map[string]any{"value": v}
		}
	}
	return out
}

func (a *app) policyExemptionCreate() *cobra.Command {
	var name, assignment, category, expires, display, desc string
	var sf scopeFlags
	c := leaf(&cobra.Command{Use: "create", Short: "Exempt a scope (a vault or higher) from a policy assignment", RunE: func(cmd *cobra.Command, _ []string) error {
		s, scope, err := policySession(&sf)
		if err != nil {
			return err
		}
		props := map[string]any{"policyAssignmentId": assignment, "exemptionCategory": category, "displayName": display, "description": desc}
		if expires != "" {
			props["expiresOn"] = expires
		}
		var out any
		path := strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/policyExemptions/" + url.PathEscape(name)
		if _, err := s.armJSONAt(cmd.Context(), http.MethodPut, path, policyAPIVersion, map[string]any{"properties": props}, &out); err != nil {
			return err
		}
		return a.print(out)
	}})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "the exemption's name")
	f.StringVarP(&assignment, "policy-assignment", "a", "", "the assignment's id")
	f.StringVarP(&category, "exemption-category", "e", "Waiver", "Waiver or Mitigated")
	f.StringVar(&expires, "expires-on", "", "when the exemption ends (UTC, e.g. 2026-12-31T00:00:00Z)")
	f.StringVar(&display, "display-name", "", "display name")
	f.StringVar(&desc, "description", "", "description")
	sf.add(c)
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("policy-assignment")
	return c
}

// policyScopedList lists the assignments or exemptions (kind, the ARM type segment) at, above
// and below a scope.
func (a *app) policyScopedList(kind, noun string) *cobra.Command {
	var sf scopeFlags
	c := leaf(&cobra.Command{Use: "list", Short: "List the " + noun + " at, above and below a scope", RunE: func(cmd *cobra.Command, _ []string) error {
		s, scope, err := policySession(&sf)
		if err != nil {
			return err
		}
		var out struct {
			Value []any `json:"value"`
		}
		if _, err := s.armJSONAt(cmd.Context(), http.MethodGet, strings.TrimRight(scope, "/")+"/providers/Microsoft.Authorization/"+kind, policyAPIVersion, nil, &out); err != nil {
			return err
		}
		return a.print(out.Value)
	}})
	sf.add(c)
	return c
}

// policyScopedOne shows (GET) or deletes one assignment or exemption by name at a scope.
func (a *app) policyScopedOne(kind, noun, verb, method string) *cobra.Command {
	var name string
	var sf scopeFlags
	c := leaf(&cobra.Command{Use: verb, Short: strings.ToUpper(verb[:1]) + verb[1:] + " a " + noun, RunE: func(cmd *cobra.Command, _ []string) error {
		s, scope, err := policySession(&sf)
		if err != nil {
			return err
		}
		var out any
		path := strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/" + kind + "/" + url.PathEscape(name)
		if _, err := s.armJSONAt(cmd.Context(), method, path, policyAPIVersion, nil, &out); err != nil {
			return notFoundOr(err, noun, verb+" of the "+noun)
		}
		if method == http.MethodGet {
			return a.print(out)
		}
		return nil
	}})
	c.Flags().StringVarP(&name, "name", "n", "", "the "+noun+"'s name")
	sf.add(c)
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) policyStateCall(use, short, verb string, print func(out map[string]any) any) *cobra.Command {
	var sf scopeFlags
	var filter string
	c := leaf(&cobra.Command{Use: use, Short: short, RunE: func(cmd *cobra.Command, _ []string) error {
		s, scope, err := policySession(&sf)
		if err != nil {
			return err
		}
		path := strings.TrimRight(scope, "/") + "/providers/Microsoft.PolicyInsights/policyStates/latest/" + verb
		if filter != "" {
			path += "?$filter=" + url.QueryEscape(filter)
		}
		var out map[string]any
		if _, err := s.armJSONAt(cmd.Context(), http.MethodPost, path, insightsAPIVersion, nil, &out); err != nil {
			return err
		}
		if print == nil {
			return nil
		}
		return a.print(print(out))
	}})
	sf.add(c)
	if verb == "queryResults" {
		c.Flags().StringVar(&filter, "filter", "", "an OData filter, e.g. \"IsCompliant eq false\"")
	}
	return c
}

func (a *app) policyStateSummarize() *cobra.Command {
	return a.policyStateCall("summarize", "Summarize compliance at a scope", "summarize", func(out map[string]any) any {
		if v, ok := out["value"].([]any); ok && len(v) == 1 {
			return v[0]
		}
		return out
	})
}

func (a *app) policyStateList() *cobra.Command {
	return a.policyStateCall("list", "List compliance states at a scope", "queryResults", func(out map[string]any) any { return out["value"] })
}

func (a *app) policyStateTriggerScan() *cobra.Command {
	return a.policyStateCall("trigger-scan", "Evaluate compliance now (states are always current here)", "triggerEvaluation", nil)
}
