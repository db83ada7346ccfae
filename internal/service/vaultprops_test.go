package service_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/netacl"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const oidA = "aaaaaaaa-0000-0000-0000-000000000001"
const oidB = "bbbbbbbb-0000-0000-0000-000000000002"
const appC = "cccccccc-0000-0000-0000-000000000003"

func TestVaultProperties_NetworkValidation(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-net", 90, false)
	tests := []struct {
		name    string
		props   service.VaultProperties
		wantErr string // "" = accepted
		check   func(t *testing.T, p service.VaultProperties)
	}{
		{"enums any case are canonicalised", service.VaultProperties{PublicNetworkAccess: "disabled",
			NetworkAcls: &service.NetworkRuleSet{DefaultAction: "deny", Bypass: "azureservices", IPRules: []service.IPRule{{Value: " 10.0.0.0/8 "}, {Value: "203.0.113.7"}, {Value: "2001:db8::/32"}}}},
			"", func(t *testing.T, p service.VaultProperties) {
				n := p.NetworkAcls
				if p.PublicNetworkAccess != "Disabled" || n.DefaultAction != "Deny" || n.Bypass != "AzureServices" {
					t.Fatalf("not canonical: %+v %+v", p.PublicNetworkAccess, n)
				}
				if n.IPRules[0].Value != "10.0.0.0/8" || n.IPRules[1].Value != "203.0.113.7" {
					t.Fatalf("ip rules = %+v, want trimmed and stored as given", n.IPRules)
				}
			}},
		{"bypass None", service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{Bypass: "NONE"}}, "", func(t *testing.T, p service.VaultProperties) {
			if p.NetworkAcls.Bypass != "None" {
				t.Fatalf("bypass = %q", p.NetworkAcls.Bypass)
			}
		}},
		{"bad cidr", service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{IPRules: []service.IPRule{{Value: "10.0.0.0/8"}, {Value: "10.0.0.0/40"}}}}, "ipRules[1] is not a valid IP address", nil},
		{"hostname rule", service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{IPRules: []service.IPRule{{Value: "example.com"}}}}, "ipRules[0]", nil},
		{"bad default action", service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{DefaultAction: "Block"}}, "defaultAction is invalid", nil},
		{"bad bypass", service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{Bypass: "Everyone"}}, "bypass is invalid", nil},
		{"bad public access", service.VaultProperties{PublicNetworkAccess: "SecuredByPerimeter"}, "publicNetworkAccess is invalid", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.props
			v, err := svc.PatchVault(ctx, "rg", "kv-net", nil, &p)
			if tc.wantErr != "" {
				var de *service.Error
				if !errors.Is(err, service.ErrBadRequest) || !errors.As(err, &de) || !strings.Contains(de.Message, tc.wantErr) {
					t.Fatalf("err = %v, want 400 containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, v.Properties)
		})
	}
}

func TestVaultProperties_PatchMergesNetworkAcls(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-merge", 90, false)
	patch := func(p service.VaultProperties) *service.Vault {
		t.Helper()
		v, err := svc.PatchVault(ctx, "rg", "kv-merge", nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	patch(service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{DefaultAction: "Deny", Bypass: "AzureServices", IPRules: []service.IPRule{{Value: "10.0.0.0/8"}}}})
	v := patch(service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{DefaultAction: "Allow"}})
	if n := v.Properties.NetworkAcls; n.DefaultAction != "Allow" || n.Bypass != "AzureServices" || len(n.IPRules) != 1 {
		t.Fatalf("after patching defaultAction: %+v (bypass and rules must stay)", n)
	}
	v = patch(service.VaultProperties{PublicNetworkAccess: "Disabled"})
	if v.Properties.PublicNetworkAccess != "Disabled" || len(v.Properties.NetworkAcls.IPRules) != 1 {
		t.Fatalf("after patching publicNetworkAccess: %+v", v.Properties)
	}
	v = patch(service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{IPRules: []service.IPRule{}}})
	if n := v.Properties.NetworkAcls; len(n.IPRules) != 0 || n.DefaultAction != "Allow" {
		t.Fatalf("an empty ipRules array must clear the rules only: %+v", n)
	}
	// The cache the data plane reads has the result.
	rules, ok := svc.LookupVault("kv-merge").NetworkRules()
	if !ok || rules.PublicNetworkAccess != "Disabled" || netacl.Evaluate(rules, netip.MustParseAddr("1.2.3.4")) != netacl.DeniedPublicAccess {
		t.Fatalf("NetworkRules = %+v, %v", rules, ok)
	}
}

func TestVaultRef_NetworkRules(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-rules", 90, false)
	if _, ok := svc.LookupVault("kv-rules").NetworkRules(); ok {
		t.Fatal("a vault without rules must report open")
	}
	if _, ok := svc.LookupVault("kv-missing").NetworkRules(); ok {
		t.Fatal("a missing vault has no rules")
	}
	p := service.VaultProperties{NetworkAcls: &service.NetworkRuleSet{DefaultAction: "Deny", IPRules: []service.IPRule{{Value: "127.0.0.1"}}}}
	if _, err := svc.PatchVault(ctx, "rg", "kv-rules", nil, &p); err != nil {
		t.Fatal(err)
	}
	rules, ok := svc.LookupVault("kv-rules").NetworkRules()
	if !ok || rules.DefaultAction != "Deny" || !reflect.DeepEqual(rules.IPRules, []string{"127.0.0.1"}) {
		t.Fatalf("NetworkRules = %+v, %v", rules, ok)
	}
}

func TestVaultProperties_AccessPolicyValidation(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-apv", 90, false)
	entry := func(mod func(*service.AccessPolicy)) []service.AccessPolicy {
		ap := service.AccessPolicy{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Secrets: []string{"Get", "LIST"}}}
		mod(&ap)
		return []service.AccessPolicy{ap}
	}
	tests := []struct {
		name    string
		aps     []service.AccessPolicy
		wantErr string
	}{
		{"valid, any case", entry(func(*service.AccessPolicy) {}), ""},
		{"keys and certificates stored as given", entry(func(a *service.AccessPolicy) { a.Permissions.Keys = []string{"wrapKey", "whatever"} }), ""},
		{"all", entry(func(a *service.AccessPolicy) { a.Permissions.Secrets = []string{"All"} }), ""},
		{"compound identity", entry(func(a *service.AccessPolicy) { a.ApplicationID = appC }), ""},
		{"other tenant", entry(func(a *service.AccessPolicy) { a.TenantID = "22222222-2222-2222-2222-222222222222" }), "not the tenant of this deployment"},
		{"object id not a guid", entry(func(a *service.AccessPolicy) { a.ObjectID = "bob" }), "objectId 'bob' is not a GUID"},
		{"application id not a guid", entry(func(a *service.AccessPolicy) { a.ApplicationID = "app" }), "applicationId 'app' is not a GUID"},
		{"no object id", entry(func(a *service.AccessPolicy) { a.ObjectID = "" }), "needs a tenantId and an objectId"},
		{"unknown secret permission", entry(func(a *service.AccessPolicy) { a.Permissions.Secrets = []string{"get", "read"} }), "permissions.secrets[1]: 'read'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.PatchVault(ctx, "rg", "kv-apv", nil, &service.VaultProperties{AccessPolicies: tc.aps})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, service.ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want 400 containing %q", err, tc.wantErr)
			}
			if _, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-apv", "add", tc.aps); !errors.Is(err, service.ErrBadRequest) {
				t.Fatalf("UpdateAccessPolicies accepted what PATCH refused: %v", err)
			}
		})
	}
	many := make([]service.AccessPolicy, service.MaxAccessPolicies+1)
	for i := range many {
		many[i] = service.AccessPolicy{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Secrets: []string{"get"}}}
	}
	if _, err := svc.PatchVault(ctx, "rg", "kv-apv", nil, &service.VaultProperties{AccessPolicies: many}); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("1025 policies: %v", err)
	}
}

func TestApplyAccessPolicyUpdate(t *testing.T) {
	ap := func(oid, app string, secrets ...string) service.AccessPolicy {
		return service.AccessPolicy{TenantID: tenant, ObjectID: oid, ApplicationID: app, Permissions: service.Permissions{Secrets: secrets}}
	}
	withKeys := ap(oidA, "", "get")
	withKeys.Permissions.Keys = []string{"get"}
	tests := []struct {
		name    string
		cur     []service.AccessPolicy
		kind    string
		entries []service.AccessPolicy
		want    []service.AccessPolicy
	}{
		{"add to empty appends", nil, "add", []service.AccessPolicy{ap(oidA, "", "get")}, []service.AccessPolicy{ap(oidA, "", "get")}},
		{"add merges without duplicates, any case", []service.AccessPolicy{ap(oidA, "", "get", "list")}, "add",
			[]service.AccessPolicy{ap(strings.ToUpper(oidA), "", "GET", "set")}, []service.AccessPolicy{ap(oidA, "", "get", "list", "set")}},
		{"add for another principal appends", []service.AccessPolicy{ap(oidA, "", "get")}, "add", []service.AccessPolicy{ap(oidB, "", "list")},
			[]service.AccessPolicy{ap(oidA, "", "get"), ap(oidB, "", "list")}},
		{"compound identity is its own entry", []service.AccessPolicy{ap(oidA, "", "get")}, "add", []service.AccessPolicy{ap(oidA, appC, "set")},
			[]service.AccessPolicy{ap(oidA, "", "get"), ap(oidA, appC, "set")}},
		{"replace overwrites the lists", []service.AccessPolicy{withKeys, ap(oidB, "", "list")}, "replace", []service.AccessPolicy{ap(oidA, "", "set")},
			[]service.AccessPolicy{ap(oidA, "", "set"), ap(oidB, "", "list")}},
		{"replace of an absent entry appends", nil, "replace", []service.AccessPolicy{ap(oidA, "", "set")}, []service.AccessPolicy{ap(oidA, "", "set")}},
		{"remove takes listed permissions", []service.AccessPolicy{ap(oidA, "", "get", "list", "set")}, "remove", []service.AccessPolicy{ap(oidA, "", "LIST")},
			[]service.AccessPolicy{ap(oidA, "", "get", "set")}},
		{"remove drops an entry left empty", []service.AccessPolicy{ap(oidA, "", "get"), ap(oidB, "", "list")}, "remove", []service.AccessPolicy{ap(oidA, "", "get")},
			[]service.AccessPolicy{ap(oidB, "", "list")}},
		{"remove keeps an entry with key permissions", []service.AccessPolicy{withKeys}, "remove", []service.AccessPolicy{ap(oidA, "", "get")},
			[]service.AccessPolicy{{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Keys: []string{"get"}}}}},
		{"remove with no permissions drops the entry", []service.AccessPolicy{withKeys}, "remove", []service.AccessPolicy{ap(oidA, "")}, []service.AccessPolicy{}},
		{"remove of get leaves all", []service.AccessPolicy{ap(oidA, "", "all")}, "remove", []service.AccessPolicy{ap(oidA, "", "get")}, []service.AccessPolicy{ap(oidA, "", "all")}},
		{"remove of an absent entry changes nothing", []service.AccessPolicy{ap(oidA, "", "get")}, "remove", []service.AccessPolicy{ap(oidB, "", "get")},
			[]service.AccessPolicy{ap(oidA, "", "get")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := clonePolicies(tc.cur)
			got := service.ApplyAccessPolicyUpdate(tc.cur, tc.kind, tc.entries)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(before, tc.cur) {
				t.Fatal("the current policies were modified in place")
			}
		})
	}
}

func clonePolicies(in []service.AccessPolicy) []service.AccessPolicy {
	var out []service.AccessPolicy
	for _, ap := range in {
		c := ap
		c.Permissions.Secrets = append([]string(nil), ap.Permissions.Secrets...)
		c.Permissions.Keys = append([]string(nil), ap.Permissions.Keys...)
		out = append(out, c)
	}
	return out
}

func TestUpdateAccessPolicies(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-ap", 90, false)
	e := []service.AccessPolicy{{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Secrets: []string{"get"}}}}
	v, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-ap", "Add", e)
	if err != nil || len(v.Properties.AccessPolicies) != 1 {
		t.Fatalf("add: %v, %+v", err, v)
	}
	if got, _ := svc.GetVault(ctx, "rg", "kv-ap"); len(got.Properties.AccessPolicies) != 1 {
		t.Fatalf("the update did not reach the vault: %+v", got.Properties.AccessPolicies)
	}
	if _, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-ap", "merge", e); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("bad kind: %v", err)
	}
	if _, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-ap", "add", nil); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("no entries: %v", err)
	}
	if _, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-none", "add", e); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("missing vault: %v", err)
	}
	stranger := service.WithCaller(ctx, service.Caller{ObjectID: "someone-else", TenantID: tenant})
	if _, err := svc.UpdateAccessPolicies(stranger, "rg", "kv-ap", "add", e); !errors.Is(err, service.ErrForbidden) || !strings.Contains(err.Error(), "Microsoft.KeyVault/vaults/accessPolicies/write") {
		t.Fatalf("unauthorized caller: %v", err)
	}
}

// A vault loaded from the store (start-up, another node's write) has not been prepared: its
// firewall and policies are computed on use and must decide exactly as a prepared one.
func TestVault_UnpreparedRecordDecidesTheSame(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	open := func() *service.Service {
		kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service.New(ctx, st, kr, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := open()
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	mkVault(t, svc, actx, "kv-open", 90, false)
	mkVault(t, svc, actx, "kv-shut", 90, false)
	p := service.VaultProperties{
		NetworkAcls:    &service.NetworkRuleSet{DefaultAction: "Deny", IPRules: []service.IPRule{{Value: "10.0.0.0/8"}, {Value: "192.0.2.7"}}},
		AccessPolicies: []service.AccessPolicy{{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Secrets: []string{"get"}}}},
	}
	if _, err := svc.PatchVault(actx, "rg", "kv-shut", nil, &p); err != nil {
		t.Fatal(err)
	}
	reloaded := open()
	for _, s := range []*service.Service{svc, reloaded} {
		if _, ok := s.LookupVault("kv-open").NetworkRules(); ok {
			t.Fatal("an open vault reported rules")
		}
		rules, ok := s.LookupVault("kv-shut").NetworkRules()
		if !ok {
			t.Fatal("the firewalled vault reported none")
		}
		for addr, want := range map[string]netacl.Verdict{"10.9.8.7": netacl.Allowed, "192.0.2.7": netacl.Allowed, "192.0.2.8": netacl.DeniedByFirewall} {
			if got := netacl.Evaluate(rules, netip.MustParseAddr(addr)); got != want {
				t.Fatalf("%s: %v, want %v", addr, got, want)
			}
		}
		v, err := s.GetVault(actx, "rg", "kv-shut")
		if err != nil {
			t.Fatal(err)
		}
		if oid, ok := authz.PolicyAllows(v.PolicyEntries(), []string{oidA}, authz.PermGet); !ok || oid != oidA {
			t.Fatalf("policy entries: %+v", v.PolicyEntries())
		}
	}
}

// Switching the permission model takes roleAssignments/write at the vault; other updates by a
// caller with vaults/write only (a Key Vault Contributor) do not.
func TestVaultProperties_PermissionModelSwitchNeedsRoleAssignmentWrite(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const contributor = "contributor-oid"
	opts := testOptions()
	opts.Authorizer = authz.Assignments{
		{ID: "owner", PrincipalID: admin, Scope: "/", Role: &authz.Role{Permissions: []authz.Permission{{Actions: []string{"*"}}}}},
		{ID: "contrib", PrincipalID: contributor, Scope: "/", Role: &authz.Role{Permissions: []authz.Permission{{Actions: []string{"Microsoft.KeyVault/*"}}}}},
	}
	svc, err := service.New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	on, off := true, false
	days := 90
	if _, _, err := svc.PutVault(actx, "rg", "kv-model", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{TenantID: tenant,
		Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days, EnableRbacAuthorization: &off}}); err != nil {
		t.Fatal(err)
	}
	cctx := service.WithCaller(ctx, service.Caller{ObjectID: contributor, TenantID: tenant})
	if _, err := svc.PatchVault(cctx, "rg", "kv-model", nil, &service.VaultProperties{EnableRbacAuthorization: &on}); !errors.Is(err, service.ErrForbidden) ||
		!strings.Contains(err.Error(), "Microsoft.Authorization/roleAssignments/write") {
		t.Fatalf("a contributor switching to RBAC: %v, want AuthorizationFailed on roleAssignments/write", err)
	}
	if _, err := svc.PatchVault(cctx, "rg", "kv-model", nil, &service.VaultProperties{EnableRbacAuthorization: &off}); err != nil {
		t.Fatalf("a contributor sending the unchanged model: %v", err)
	}
	if _, err := svc.UpdateAccessPolicies(cctx, "rg", "kv-model", "add", []service.AccessPolicy{{TenantID: tenant, ObjectID: oidA, Permissions: service.Permissions{Secrets: []string{"get"}}}}); err != nil {
		t.Fatalf("a contributor editing access policies: %v", err)
	}
	if _, err := svc.PatchVault(actx, "rg", "kv-model", nil, &service.VaultProperties{EnableRbacAuthorization: &on}); err != nil {
		t.Fatalf("the owner switching to RBAC: %v", err)
	}
}
