package authz_test

import (
	"testing"

	"github.com/strongroom/strongroom/internal/authz"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.KeyVault/vaults/read", true},
		{"Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true},
		{"microsoft.keyvault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true},
		{"Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/keys/read", false},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/read", true},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/write", false},
		{"Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/read", true},
		{"Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/write", false},
		{"MICROSOFT.KEYVAULT/VAULTS/READ", "microsoft.keyvault/vaults/read", true},
		{"Microsoft.KeyVault/*/secrets/*/action", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true},
		{"Microsoft.KeyVault/*/secrets/*/action", "Microsoft.KeyVault/vaults/secrets/getSecret/read", false},
		{"*/read", "Microsoft.KeyVault/vaults/READ", true},
		{"Microsoft.KeyVault/*", "Microsoft.KeyVault", false},
		{"a*b*c", "abc", true},
		{"a*bc*c", "abc", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, c := range cases {
		if got := authz.Match(c.pattern, c.action); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.action, got, c.want)
		}
	}
}

func TestScopeContains(t *testing.T) {
	cases := []struct {
		parent, child string
		want          bool
	}{
		{"/", "/subscriptions/s", true},
		{"/subscriptions/s", "/subscriptions/s/resourceGroups/rg", true},
		{"/subscriptions/S", "/subscriptions/s/resourcegroups/rg", true},
		{"/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2", false},
		{"/subscriptions/s/resourceGroups/rg", "/subscriptions/s", false},
		{"/subscriptions/s/", "/subscriptions/S", true},
		{"/subscriptions/s", "/subscriptions/s2", false},
		{"/subscriptions/s", "/subscriptionsX/s/x", false},
		{"", "/anything", true},
		{"/subscriptions/s/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/KV", "/subscriptions/s/resourcegroups/rg/providers/microsoft.keyvault/vaults/kv/secrets/x", true},
	}
	for _, c := range cases {
		if got := authz.ScopeContains(c.parent, c.child); got != c.want {
			t.Errorf("ScopeContains(%q, %q) = %v, want %v", c.parent, c.child, got, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	reader := authz.Role{ID: "r", DataActions: []string{"Microsoft.KeyVault/vaults/secrets/readMetadata/action"}}
	as := []authz.Assignment{
		{ID: "a1", PrincipalID: "admin", Role: authz.Owner, Scope: "/"},
		{ID: "a2", PrincipalID: "bob", Role: reader, Scope: "/subscriptions/s/resourceGroups/rg"},
	}
	scope := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"
	allow := func(p, a string, data bool, s string) authz.Request {
		return authz.Request{PrincipalID: p, Action: authz.Action(a), DataAction: data, Scope: s}
	}
	cases := []struct {
		name   string
		req    authz.Request
		want   bool
		assign string
	}{
		{"admin anything", allow("admin", "Microsoft.KeyVault/vaults/delete", false, scope), true, "a1"},
		{"bob metadata", allow("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", true, scope), true, "a2"},
		{"bob value", allow("bob", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true, scope), false, ""},
		{"bob control plane", allow("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", false, scope), false, ""},
		{"bob other rg", allow("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", true, "/subscriptions/s/resourceGroups/other"), false, ""},
		{"stranger", allow("eve", "Microsoft.KeyVault/vaults/read", false, scope), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := authz.Decide(c.req, as)
			if d.Allowed != c.want || d.AssignmentID != c.assign {
				t.Fatalf("Decide = %+v, want allowed=%v assignment=%q", d, c.want, c.assign)
			}
		})
	}
}
