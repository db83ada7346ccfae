package authz

import (
	"strings"
	"testing"
)

func TestPolicyPermission(t *testing.T) {
	tests := []struct {
		action, want string // want "" = not grantable
	}{
		{"Microsoft.KeyVault/vaults/secrets/getSecret/action", PermGet},
		{"microsoft.keyvault/vaults/secrets/GETSECRET/action", PermGet},
		{"Microsoft.KeyVault/vaults/secrets/setSecret/action", PermSet},
		{"Microsoft.KeyVault/vaults/secrets/readMetadata/action", PermList},
		{"Microsoft.KeyVault/vaults/secrets/update/action", PermSet},
		{"Microsoft.KeyVault/vaults/secrets/delete", PermDelete},
		{"Microsoft.KeyVault/vaults/secrets/backup/action", PermBackup},
		{"Microsoft.KeyVault/vaults/secrets/restore/action", PermRestore},
		{"Microsoft.KeyVault/vaults/secrets/recover/action", PermRecover},
		{"Microsoft.KeyVault/vaults/secrets/purge/action", PermPurge},
		{"Microsoft.KeyVault/vaults/secrets/*", ""},
		{"Microsoft.KeyVault/vaults/keys/sign/action", ""},
		{"Microsoft.KeyVault/vaults/write", ""},
		{"Microsoft.KeyVault/vaults/secrets/", ""},
		{"", ""},
		{"secrets/getSecret/action", ""},
	}
	for _, tc := range tests {
		got, ok := PolicyPermission(tc.action)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("PolicyPermission(%q) = %q, %v; want %q", tc.action, got, ok, tc.want)
		}
	}
}

func TestPolicyAllows(t *testing.T) {
	const (
		user  = "11111111-0000-0000-0000-000000000001"
		group = "22222222-0000-0000-0000-000000000002"
		other = "33333333-0000-0000-0000-000000000003"
		app   = "44444444-0000-0000-0000-000000000004"
	)
	entries := []PolicyEntry{
		{ObjectID: other, Secrets: []string{"all"}},
		{ObjectID: group, Secrets: []string{"Get", "LIST"}},
		{ObjectID: user, ApplicationID: app, Secrets: []string{"set"}},
		{ObjectID: user, Secrets: []string{"backup"}},
	}
	tests := []struct {
		name       string
		principals []string
		appID      string
		perm       string
		wantOID    string // "" = denied
	}{
		{"through a group", []string{user, group}, "", PermGet, group},
		{"permission case-insensitive", []string{user, group}, "", "list", group},
		{"object id case-insensitive", []string{strings.ToUpper(group)}, "", PermGet, group},
		{"own entry", []string{user}, "", PermBackup, user},
		{"missing permission", []string{user, group}, "", PermPurge, ""},
		{"all grants everything", []string{other}, "", PermPurge, other},
		{"nobody", nil, "", PermGet, ""},
		{"compound entry without an app", []string{user}, "", PermSet, ""},
		{"compound entry through its app", []string{user}, app, PermSet, user},
		{"compound entry through another app", []string{user}, other, PermSet, ""},
		{"compound app id case-insensitive", []string{user}, strings.ToUpper(app), PermSet, user},
		{"app id alone is not a principal", []string{app}, app, PermSet, ""},
		{"empty permission", []string{other}, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oid, ok := PolicyAllowsApp(entries, tc.principals, tc.appID, tc.perm)
			if ok != (tc.wantOID != "") || oid != tc.wantOID {
				t.Fatalf("PolicyAllowsApp = %q, %v; want %q", oid, ok, tc.wantOID)
			}
			if tc.appID == "" {
				if oid2, ok2 := PolicyAllows(entries, tc.principals, tc.perm); oid2 != oid || ok2 != ok {
					t.Fatalf("PolicyAllows = %q, %v; differs from PolicyAllowsApp without an app", oid2, ok2)
				}
			}
		})
	}
	if _, ok := PolicyAllows(nil, []string{user}, PermGet); ok {
		t.Fatal("no entries must deny")
	}
	if _, ok := PolicyAllows([]PolicyEntry{{ObjectID: "", Secrets: []string{"all"}}}, []string{""}, PermGet); ok {
		t.Fatal("an empty object id must match nobody")
	}
}

func TestPolicyDenialMessage(t *testing.T) {
	got := PolicyDenialMessage("app-1", "oid-1", "https://localhost:8443/t/v2.0", PermGet, "kv1", "westeurope")
	want := "The user, group or application 'appid=app-1;oid=oid-1;iss=https://localhost:8443/t/v2.0' does not have secrets get permission on key vault 'kv1;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
	if got != want {
		t.Fatalf("message\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(got, "does not have secrets get permission on key vault") {
		t.Fatal("the contract's phrase is missing")
	}
}
