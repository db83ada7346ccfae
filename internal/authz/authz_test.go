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
	owner := &authz.Role{ID: "o", Permissions: []authz.Permission{{Actions: []string{"*"}}}}
	kvAdmin := &authz.Role{ID: "k", Permissions: []authz.Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/*"}}}}
	reader := &authz.Role{ID: "r", Permissions: []authz.Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/readMetadata/action"}}}}
	contributor := &authz.Role{ID: "c", Permissions: []authz.Permission{{Actions: []string{"*"}, NotActions: []string{"Microsoft.Authorization/*/Write"}}}}
	officer := &authz.Role{ID: "so", Permissions: []authz.Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}, NotDataActions: []string{"Microsoft.KeyVault/vaults/secrets/purge/action"}}}}
	limited := &authz.Role{ID: "l", Permissions: []authz.Permission{{Actions: []string{authz.ActionRoleAssignmentWrite, "Microsoft.Authorization/*/read"}}}, AssignableRoles: []string{"r"}}
	as := []authz.Assignment{
		{ID: "a1", PrincipalID: "admin", Role: owner, Scope: "/"},
		{ID: "a1k", PrincipalID: "admin", Role: kvAdmin, Scope: "/"},
		{ID: "a2", PrincipalID: "bob", Role: reader, Scope: "/subscriptions/s/resourceGroups/rg"},
		{ID: "a3", PrincipalID: "group-sre", Role: officer, Scope: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"},
		{ID: "a4", PrincipalID: "carol", Role: contributor, Scope: "/subscriptions/s"},
		{ID: "a5", PrincipalID: "dave", Role: limited, Scope: "/subscriptions/s"},
		{ID: "a6", PrincipalID: "erin", Role: nil, Scope: "/"},
	}
	scope := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"
	req := func(p, a string, data bool, s string, groups ...string) authz.Request {
		return authz.Request{PrincipalID: p, Groups: groups, Action: authz.Action(a), DataAction: data, Scope: s}
	}
	assign := func(p, target string) authz.Request {
		r := req(p, authz.ActionRoleAssignmentWrite, false, scope)
		r.TargetRole = target
		return r
	}
	cases := []struct {
		name   string
		req    authz.Request
		want   bool
		assign string
	}{
		{"owner control plane", req("admin", "Microsoft.KeyVault/vaults/delete", false, scope), true, "a1"},
		{"owner data through kv admin", req("admin", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true, scope+"/secrets/x"), true, "a1k"},
		{"bob metadata", req("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", true, scope), true, "a2"},
		{"bob value", req("bob", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true, scope), false, ""},
		{"bob control plane", req("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", false, scope), false, ""},
		{"bob other rg", req("bob", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", true, "/subscriptions/s/resourceGroups/other"), false, ""},
		{"stranger", req("eve", "Microsoft.KeyVault/vaults/read", false, scope), false, ""},
		{"through a group", req("frank", "Microsoft.KeyVault/vaults/secrets/setSecret/action", true, scope+"/secrets/x", "group-x", "GROUP-SRE"), true, "a3"},
		{"group role excludes purge", req("frank", "Microsoft.KeyVault/vaults/secrets/purge/action", true, scope+"/secrets/x", "group-sre"), false, ""},
		{"group at vault does not reach another vault", req("frank", "Microsoft.KeyVault/vaults/secrets/setSecret/action", true, scope+"2/secrets/x", "group-sre"), false, ""},
		{"not a member", req("frank", "Microsoft.KeyVault/vaults/secrets/setSecret/action", true, scope+"/secrets/x"), false, ""},
		{"contributor writes vaults", req("carol", "Microsoft.KeyVault/vaults/write", false, scope), true, "a4"},
		{"contributor cannot assign roles", req("carol", authz.ActionRoleAssignmentWrite, false, scope), false, ""},
		{"contributor has no data actions", req("carol", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true, scope), false, ""},
		{"limited assigns an allowed role", assign("dave", "R"), true, "a5"},
		{"limited cannot assign another role", assign("dave", "o"), false, ""},
		{"limited reads without a target", req("dave", "Microsoft.Authorization/roleAssignments/read", false, scope), true, "a5"},
		{"an assignment of a missing role grants nothing", req("erin", "Microsoft.KeyVault/vaults/read", false, scope), false, ""},
		{"principal ids compare case-insensitively", req("ADMIN", "Microsoft.KeyVault/vaults/read", false, scope), true, "a1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := authz.Decide(c.req, as)
			if d.Allowed != c.want || d.AssignmentID != c.assign {
				t.Fatalf("Decide = %+v, want allowed=%v assignment=%q", d, c.want, c.assign)
			}
			if !d.Allowed && d.Reason != authz.ReasonNoRBAC {
				t.Fatalf("reason = %q", d.Reason)
			}
		})
	}
}
