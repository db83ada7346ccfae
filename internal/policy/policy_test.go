package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/policy"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func days(n int) *time.Time { t := now.AddDate(0, 0, n); return &t }

func secret(exp, nbf *time.Time, contentType string) policy.Resource {
	return policy.SecretResource(policy.SecretFields{Name: "s", Created: now, Updated: now, Expires: exp, NotBefore: nbf, ContentType: contentType, Enabled: true})
}

func bptr(b bool) *bool { return &b }

// Each built-in against a compliant and a non-compliant resource, with each effect it allows.
func TestBuiltIns(t *testing.T) {
	old := now.AddDate(0, 0, -400)
	cases := []struct {
		id                 string
		params             map[string]policy.ParamValue
		compliant, failing policy.Resource
	}{
		{"98728c90-32c7-4049-8429-847dc0f4fe37", nil, secret(days(30), nil, ""), secret(nil, nil, "")},
		{"342e8053-e12e-4c44-be01-c3c2f318400f", map[string]policy.ParamValue{"maximumValidityInDays": {Value: 30.0}}, secret(days(30), nil, ""), secret(days(31), nil, "")},
		{"342e8053-e12e-4c44-be01-c3c2f318400f", nil, secret(days(90), nil, ""), secret(nil, nil, "")},
		{"b0eb591a-5e70-4534-a8bf-04b9c489584a", map[string]policy.ParamValue{"minimumDaysBeforeExpiration": {Value: 10.0}}, secret(days(11), nil, ""), secret(days(9), nil, "")},
		{"b0eb591a-5e70-4534-a8bf-04b9c489584a", nil, secret(nil, nil, ""), secret(days(89), nil, "")},
		{"e8d99835-8a06-45ae-a8e0-87a91941ccfe", nil, secret(nil, nil, ""),
			policy.SecretResource(policy.SecretFields{Name: "s", Created: old, Updated: old, Enabled: true})},
		{"e8d99835-8a06-45ae-a8e0-87a91941ccfe", nil, policy.SecretResource(policy.SecretFields{Name: "s", Created: old, Updated: old, NotBefore: days(-10), Enabled: true}),
			policy.SecretResource(policy.SecretFields{Name: "s", Created: now, Updated: now, NotBefore: &old, Enabled: true})},
		{"75262d3e-ba4a-4f43-85f8-9f72c090e5e3", nil, secret(nil, nil, "text/plain"), secret(nil, nil, "")},
		{"55615ac9-af46-4a59-874e-391cc3dfb490", nil, policy.VaultResource(policy.VaultFields{DefaultAction: "Deny"}), policy.VaultResource(policy.VaultFields{DefaultAction: "Allow"})},
		{"55615ac9-af46-4a59-874e-391cc3dfb490", nil, policy.VaultResource(policy.VaultFields{CreateMode: "recover"}), policy.VaultResource(policy.VaultFields{})},
		{"405c5871-3e91-4644-8a63-58e19d68ff5b", nil, policy.VaultResource(policy.VaultFields{PublicAccess: "Disabled"}), policy.VaultResource(policy.VaultFields{PublicAccess: "Enabled"})},
		{"0b60c0b2-2dc2-4e1c-b5c9-abbed971de53", nil, policy.VaultResource(policy.VaultFields{SoftDelete: bptr(true), PurgeProtection: bptr(true)}),
			policy.VaultResource(policy.VaultFields{SoftDelete: bptr(true)})},
		{"1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d", nil, policy.VaultResource(policy.VaultFields{SoftDelete: bptr(true)}), policy.VaultResource(policy.VaultFields{SoftDelete: bptr(false)})},
		{"12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5", nil, policy.VaultResource(policy.VaultFields{RBAC: bptr(true)}), policy.VaultResource(policy.VaultFields{RBAC: bptr(false)})},
		{"12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5", nil, policy.VaultResource(policy.VaultFields{CreateMode: "recover"}), policy.VaultResource(policy.VaultFields{})},
		{"ac673a9a-f77d-4846-b2d8-a57f8e1c01dc", nil, policy.VaultResource(policy.VaultFields{DefaultAction: "Deny"}), policy.VaultResource(policy.VaultFields{DefaultAction: "Allow"})},
	}
	for _, c := range cases {
		d, ok := policy.BuiltIn(c.id)
		if !ok {
			t.Fatalf("no built-in %s", c.id)
		}
		rule, err := d.Compile()
		if err != nil {
			t.Fatalf("%s: %v", d.Properties.DisplayName, err)
		}
		allowed := d.Properties.Parameters["effect"].AllowedValues
		for _, eff := range allowed {
			params := map[string]policy.ParamValue{"effect": {Value: eff}}
			for k, v := range c.params {
				params[k] = v
			}
			p, err := d.Params(params)
			if err != nil {
				t.Fatalf("%s: %v", d.Properties.DisplayName, err)
			}
			for _, r := range []struct {
				res  policy.Resource
				want bool
			}{{c.compliant, false}, {c.failing, true}} {
				got, err := rule.Eval(&policy.Env{Resource: r.res, Params: p, Now: now})
				if err != nil {
					t.Fatalf("%s: %v", d.Properties.DisplayName, err)
				}
				want := r.want && eff != "Disabled"
				if got.Matched != want || got.Effect != eff {
					t.Errorf("%s with %s on %v: matched %v (%s), want %v", d.Properties.DisplayName, eff, r.res, got.Matched, got.Effect, want)
				}
				if got.Matched && got.Reason == "" {
					t.Errorf("%s: a match without a reason", d.Properties.DisplayName)
				}
			}
		}
	}
	// A Data definition never looks at vaults, an Indexed one never at secrets.
	if policy.AppliesTo(policy.ModeKeyVaultData, policy.TypeVault) || policy.AppliesTo(policy.ModeIndexed, policy.TypeSecret) {
		t.Fatal("modes mix up resource types")
	}
}

func eval(t *testing.T, rule string, res policy.Resource, params map[string]any) (policy.Result, error) {
	t.Helper()
	r, err := policy.ParseRule([]byte(rule))
	if err != nil {
		return policy.Result{}, err
	}
	return r.Eval(&policy.Env{Resource: res, Params: params, Now: now})
}

func TestOperatorsAndExpressions(t *testing.T) {
	res := policy.Resource{"type": "Microsoft.KeyVault/vaults", "name": "KV-Prod-1", "location": "eastus",
		"tags": map[string]any{"env": "Prod", "owner": "team-a"}, "n": 5.0, "flag": true,
		"microsoft.keyvault/vaults/networkacls.iprules[*]": []any{map[string]any{"value": "10.0.0.1"}, map[string]any{"value": "0.0.0.0/0"}}}
	cases := []struct {
		cond string
		want bool
	}{
		{`{"field": "name", "equals": "kv-prod-1"}`, true},
		{`{"field": "name", "notEquals": "kv-prod-1"}`, false},
		{`{"field": "name", "like": "kv-*-1"}`, true},
		{`{"field": "name", "notLike": "kv-dev-*"}`, true},
		{`{"field": "name", "contains": "PROD"}`, true},
		{`{"field": "location", "in": ["westus", "EastUS"]}`, true},
		{`{"field": "location", "notIn": ["westus"]}`, true},
		{`{"field": "tags", "containsKey": "ENV"}`, true},
		{`{"field": "tags['env']", "equals": "prod"}`, true},
		{`{"field": "tags.owner", "equals": "team-a"}`, true},
		{`{"field": "tags['missing']", "exists": false}`, true},
		{`{"field": "missing", "notEquals": "x"}`, true},
		{`{"field": "missing", "equals": ""}`, true},
		{`{"field": "missing", "less": 3}`, false},
		{`{"field": "n", "greater": 4}`, true},
		{`{"field": "n", "lessOrEquals": "5"}`, true},
		{`{"field": "flag", "equals": true}`, true},
		{`{"field": "flag", "equals": "true"}`, true},
		{`{"value": "[concat('a', 'b')]", "equals": "AB"}`, true},
		{`{"value": "[if(equals(field('location'), 'eastus'), 1, 2)]", "equals": 1}`, true},
		{`{"value": "[empty(field('missing'))]", "equals": true}`, true},
		{`{"value": "[length(field('tags'))]", "equals": 2}`, true},
		{`{"value": "[addDays('2026-01-31T00:00:00Z', 1)]", "equals": "2026-02-01T00:00:00Z"}`, true},
		{`{"value": "[utcNow()]", "greater": "2026-05-31T00:00:00Z"}`, true},
		{`{"value": "[toLower(parameters('p'))]", "equals": "xyz"}`, true},
		{`{"value": "[parameters('list')[1]]", "equals": "b"}`, true},
		{`{"value": "[parameters('obj').k]", "equals": "v"}`, true},
		{`{"value": "'quoted'", "equals": "'quoted'"}`, true},
		{`{"value": "[[not an expression]", "equals": "[[not an expression]"}`, true},
		{`{"value": "[padLeft('7', 3, '0')]", "equals": "007"}`, true},
		{`{"count": {"field": "Microsoft.KeyVault/vaults/networkAcls.ipRules[*]", "where": {"field": "Microsoft.KeyVault/vaults/networkAcls.ipRules[*].value", "equals": "0.0.0.0/0"}}, "greater": 0}`, true},
		{`{"count": {"field": "Microsoft.KeyVault/vaults/networkAcls.ipRules[*]"}, "equals": 2}`, true},
		{`{"count": {"field": "Microsoft.KeyVault/vaults/networkAcls.ipRules[*]", "where": {"value": "[current('Microsoft.KeyVault/vaults/networkAcls.ipRules[*].value')]", "like": "10.*"}}, "equals": 1}`, true},
		{`{"not": {"field": "name", "equals": "kv-prod-1"}}`, false},
		{`{"anyOf": [{"field": "name", "equals": "x"}, {"field": "n", "equals": 5}]}`, true},
		{`{"allOf": [{"field": "name", "equals": "x"}, {"field": "n", "equals": 5}]}`, false},
	}
	params := map[string]any{"p": "XYZ", "list": []any{"a", "b"}, "obj": map[string]any{"k": "v"}}
	for _, c := range cases {
		got, err := eval(t, `{"if": `+c.cond+`, "then": {"effect": "deny"}}`, res, params)
		if err != nil {
			t.Errorf("%s: %v", c.cond, err)
			continue
		}
		if got.Matched != c.want || got.Effect != "Deny" {
			t.Errorf("%s: matched %v, want %v", c.cond, got.Matched, c.want)
		}
	}
	got, _ := eval(t, `{"if": {"allOf": [{"field": "type", "equals": "Microsoft.KeyVault/vaults"}, {"field": "n", "greater": 4}]}, "then": {"effect": "audit"}}`, res, nil)
	if got.Reason != "field 'type' equals 'Microsoft.KeyVault/vaults'; field 'n' greater 4" {
		t.Errorf("reason = %q", got.Reason)
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat(`{"not": `, 40) + `{"field": "name", "equals": "x"}` + strings.Repeat(`}`, 40)
	wide := `{"anyOf": [` + strings.TrimSuffix(strings.Repeat(`{"field": "name", "equals": "x"},`, 600), ",") + `]}`
	deepExpr := `{"value": "[` + strings.Repeat("not(", 40) + "true()" + strings.Repeat(")", 40) + `]", "equals": true}`
	for _, c := range []struct{ rule, want string }{
		{`{"then": {"effect": "deny"}}`, "if"},
		{`{"if": {"field": "name", "equals": "x"}}`, "then"},
		{`{"if": {"field": "name", "equals": "x"}, "then": {}}`, "effect"},
		{`{"if": {"field": "name"}, "then": {"effect": "deny"}}`, "operator"},
		{`{"if": {"field": "name", "equals": "x", "in": ["x"]}, "then": {"effect": "deny"}}`, "operator"},
		{`{"if": {"field": "name", "matchesRegex": "x"}, "then": {"effect": "deny"}}`, "not a condition operator"},
		{`{"if": {"equals": "x"}, "then": {"effect": "deny"}}`, "exactly one of field"},
		{`{"if": {"allOf": []}, "then": {"effect": "deny"}}`, "non-empty"},
		{`{"if": {"value": "[unknownFn()]", "equals": 1}, "then": {"effect": "deny"}}`, ""},
		{`{"if": {"value": "[concat('a']", "equals": 1}, "then": {"effect": "deny"}}`, "expression"},
		{`{"if": {"count": {"field": "tags"}, "equals": 1}, "then": {"effect": "deny"}}`, "[*]"},
		{`{"if": ` + deep + `, "then": {"effect": "deny"}}`, "deeper"},
		{`{"if": ` + wide + `, "then": {"effect": "deny"}}`, "more than"},
		{`{"if": ` + deepExpr + `, "then": {"effect": "deny"}}`, "deeper"},
	} {
		r, err := policy.ParseRule([]byte(c.rule))
		if c.want == "" { // parses; fails when evaluated
			if err != nil {
				t.Errorf("%.60s: %v", c.rule, err)
				continue
			}
			if _, err := r.Eval(&policy.Env{Now: now}); err == nil || !strings.Contains(err.Error(), "not a supported function") {
				t.Errorf("%.60s: eval err %v", c.rule, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s: err %v, want one about %q", c.rule, err, c.want)
		}
	}
}

func TestParams(t *testing.T) {
	d, _ := policy.BuiltIn("342e8053-e12e-4c44-be01-c3c2f318400f")
	for _, c := range []struct {
		given map[string]policy.ParamValue
		want  string
	}{
		{map[string]policy.ParamValue{"effect": {Value: "Block"}}, "allowed values"},
		{map[string]policy.ParamValue{"maximumValidityInDays": {Value: "30"}}, "type Integer"},
		{map[string]policy.ParamValue{"maximumValidityInDays": {Value: 30.5}}, "type Integer"},
		{map[string]policy.ParamValue{"nope": {Value: 1.0}}, "no such parameter"},
	} {
		if _, err := d.Params(c.given); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.given, err, c.want)
		}
	}
	p, err := d.Params(nil)
	if err != nil || p["effect"] != "Audit" || p["maximumValidityInDays"] != 90.0 {
		t.Fatalf("defaults: %v %v", p, err)
	}
	custom := policy.Definition{Properties: policy.DefinitionProperties{Mode: "indexed", Parameters: map[string]policy.ParameterDef{"x": {Type: "String"}},
		PolicyRule: json.RawMessage(`{"if": {"field": "name", "equals": "[parameters('x')]"}, "then": {"effect": "deny"}}`)}}
	if _, err := custom.Compile(); err != nil || custom.Properties.Mode != "Indexed" {
		t.Fatalf("custom: %v", err)
	}
	if _, err := custom.Params(nil); err == nil || !strings.Contains(err.Error(), "required") {
		t.Fatalf("a parameter without a default: %v", err)
	}
}

// FuzzRule: no input panics; the step budget (MaxEvalSteps) ends any evaluation.
func FuzzRule(f *testing.F) {
	for _, d := range policy.BuiltIns {
		f.Add(string(d.Properties.PolicyRule))
	}
	f.Add(`{"if": {"value": "[if(true(), concat('a', string(1)), padLeft('x', 9, 'y'))]", "like": "*a*"}, "then": {"effect": "audit"}}`)
	f.Add(`{"if": {"count": {"field": "a[*]", "where": {"value": "[current()]", "equals": 1}}, "greater": 0}, "then": {"effect": "deny"}}`)
	res := policy.Resource{"name": "x", "a[*]": []any{1.0, 2.0, map[string]any{"b": "c"}}, "tags": map[string]any{"t": "v"}}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := policy.ParseRule([]byte(raw))
		if err != nil {
			return
		}
		_, _ = r.Eval(&policy.Env{Resource: res, Params: map[string]any{"effect": "Deny", "maximumValidityInDays": 3.0}, Now: now})
	})
}
