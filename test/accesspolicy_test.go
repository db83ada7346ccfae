package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
)

const (
	apUserA = "0a0a0a0a-1111-4111-8111-000000000001"
	apUserB = "0b0b0b0b-2222-4222-8222-000000000002"
	apApp   = "0c0c0c0c-3333-4333-8333-000000000003"
)

// secretPolicy is an access-policy entry with secret permissions only.
func secretPolicy(tenant, oid, app string, perms ...string) *armkeyvault.AccessPolicyEntry {
	e := &armkeyvault.AccessPolicyEntry{TenantID: to.Ptr(tenant), ObjectID: to.Ptr(oid), Permissions: &armkeyvault.Permissions{}}
	if app != "" {
		e.ApplicationID = to.Ptr(app)
	}
	for _, p := range perms {
		e.Permissions.Secrets = append(e.Permissions.Secrets, to.Ptr(armkeyvault.SecretPermissions(p)))
	}
	return e
}

// policiesOf reads a vault's access policies back as "oid[/app]" -> sorted secret permissions.
func (e *env) policiesOf(t *testing.T, rg, name string) map[string][]string {
	t.Helper()
	v, err := e.vaults.Get(context.Background(), rg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ap := range v.Properties.AccessPolicies {
		key := strings.ToLower(*ap.ObjectID)
		if ap.ApplicationID != nil && *ap.ApplicationID != "" {
			key += "/" + strings.ToLower(*ap.ApplicationID)
		}
		perms := []string{}
		if ap.Permissions != nil {
			for _, p := range ap.Permissions.Secrets {
				perms = append(perms, strings.ToLower(string(*p)))
			}
		}
		sort.Strings(perms)
		out[key] = perms
	}
	return out
}

// The ARM access-policy updates (Vaults_UpdateAccessPolicy) as the Go SDK sends them: add
// merges into the entry of the same identity or appends, replace overwrites its lists, remove
// takes permissions away and drops an entry left empty; invalid entries are refused with 400;
// and the route is management-plane RBAC.
func TestAccessPolicy_AddReplaceRemove(t *testing.T) {
	recordClient(t, "go", "armkeyvault Vaults.UpdateAccessPolicy")
	e := newEnv(t, nil)
	ctx := context.Background()
	tenant := e.srv.Admin.TenantID
	e.createVault(t, "rg-ap", "kv-ap", nil)
	update := func(kind armkeyvault.AccessPolicyUpdateKind, entries ...*armkeyvault.AccessPolicyEntry) armkeyvault.VaultsClientUpdateAccessPolicyResponse {
		t.Helper()
		res, err := e.vaults.UpdateAccessPolicy(ctx, "rg-ap", "kv-ap", kind, armkeyvault.VaultAccessPolicyParameters{
			Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: entries}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		return res
	}
	want := func(step string, w map[string][]string) {
		t.Helper()
		if got := e.policiesOf(t, "rg-ap", "kv-ap"); !reflect.DeepEqual(got, w) {
			t.Fatalf("after %s: policies %v, want %v", step, got, w)
		}
	}

	res := update(armkeyvault.AccessPolicyUpdateKindAdd, secretPolicy(tenant, apUserA, "", "get", "list"))
	if *res.Name != "add" || *res.Type != "Microsoft.KeyVault/vaults/accessPolicies" || !strings.HasSuffix(*res.ID, "/vaults/kv-ap/accessPolicies/add") || *res.Location != "eastus" {
		t.Fatalf("answer: id %q name %q type %q location %q", *res.ID, *res.Name, *res.Type, *res.Location)
	}
	want("add", map[string][]string{apUserA: {"get", "list"}})

	update(armkeyvault.AccessPolicyUpdateKindAdd, secretPolicy(tenant, strings.ToUpper(apUserA), "", "GET", "set"), secretPolicy(tenant, apUserB, "", "list"))
	want("add merging", map[string][]string{apUserA: {"get", "list", "set"}, apUserB: {"list"}})

	update(armkeyvault.AccessPolicyUpdateKindAdd, secretPolicy(tenant, apUserA, apApp, "purge"))
	want("add of a compound identity", map[string][]string{apUserA: {"get", "list", "set"}, apUserB: {"list"}, apUserA + "/" + apApp: {"purge"}})

	update(armkeyvault.AccessPolicyUpdateKindReplace, secretPolicy(tenant, apUserA, "", "delete"))
	want("replace", map[string][]string{apUserA: {"delete"}, apUserB: {"list"}, apUserA + "/" + apApp: {"purge"}})

	update(armkeyvault.AccessPolicyUpdateKindRemove, secretPolicy(tenant, apUserB, "", "list"), secretPolicy(tenant, apUserA, apApp, "get"))
	want("remove", map[string][]string{apUserA: {"delete"}, apUserA + "/" + apApp: {"purge"}})

	res = update(armkeyvault.AccessPolicyUpdateKindRemove, secretPolicy(tenant, apUserA, apApp, "purge"))
	want("remove of the last permission", map[string][]string{apUserA: {"delete"}})
	if len(res.Properties.AccessPolicies) != 1 {
		t.Fatalf("the answer lists %d policies, want the vault's 1", len(res.Properties.AccessPolicies))
	}

	// Refused entries leave the vault as it was.
	for _, tc := range []struct {
		name  string
		entry *armkeyvault.AccessPolicyEntry
	}{
		{"other tenant", secretPolicy("99999999-9999-4999-8999-999999999999", apUserB, "", "get")},
		{"object id not a guid", secretPolicy(tenant, "bob", "", "get")},
		{"unknown permission", secretPolicy(tenant, apUserB, "", "get", "read")},
	} {
		_, err := e.vaults.UpdateAccessPolicy(ctx, "rg-ap", "kv-ap", armkeyvault.AccessPolicyUpdateKindAdd, armkeyvault.VaultAccessPolicyParameters{
			Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: []*armkeyvault.AccessPolicyEntry{tc.entry}}}, nil)
		wantStatus(t, err, http.StatusBadRequest, "BadRequest")
	}
	want("refused updates", map[string][]string{apUserA: {"delete"}})

	// Permissions in any case are accepted; key and certificate lists are kept as given.
	entry := secretPolicy(tenant, apUserB, "", "Get", "LIST")
	entry.Permissions.Keys = []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsWrapKey)}
	update(armkeyvault.AccessPolicyUpdateKindAdd, entry)
	v, err := e.vaults.Get(ctx, "rg-ap", "kv-ap", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ap := range v.Properties.AccessPolicies {
		if *ap.ObjectID == apUserB {
			found = len(ap.Permissions.Keys) == 1 && *ap.Permissions.Keys[0] == armkeyvault.KeyPermissionsWrapKey
		}
	}
	if !found {
		t.Fatalf("the key permissions were not kept: %+v", v.Properties.AccessPolicies)
	}

	// Raw HTTP: an unknown kind, a missing vault, a principal without RBAC.
	tok, err := e.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"properties":{"accessPolicies":[{"tenantId":"` + tenant + `","objectId":"` + apUserB + `","permissions":{"secrets":["get"]}}]}}`
	vaultPath := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/rg-ap/providers/Microsoft.KeyVault/vaults/"
	for _, tc := range []struct {
		path       string
		status     int
		wantInBody string
	}{
		{vaultPath + "kv-ap/accessPolicies/merge", 400, "'add', 'replace' or 'remove'"},
		{vaultPath + "kv-nope/accessPolicies/add", 404, "ResourceNotFound"},
		{vaultPath + "kv-ap/accesspolicies/ADD", 200, `"name":"add"`},
	} {
		status, got := e.armPut(t, tok.Token, tc.path, body)
		if status != tc.status || !strings.Contains(got, tc.wantInBody) {
			t.Fatalf("PUT %s: %d %s; want %d containing %q", tc.path, status, got, tc.status, tc.wantInBody)
		}
	}
	stranger := e.stranger(t)
	strangerTok, err := stranger.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	status, got := e.armPut(t, strangerTok.Token, vaultPath+"kv-ap/accessPolicies/add", body)
	if status != http.StatusForbidden || !strings.Contains(got, "AuthorizationFailed") || !strings.Contains(got, "Microsoft.KeyVault/vaults/accessPolicies/write") {
		t.Fatalf("a principal without a role: %d %s", status, got)
	}
}

// armPut sends one management-plane PUT with a bearer token and returns the status and body.
func (e *env) armPut(t *testing.T, token, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", e.srv.URL+path+"?api-version=2023-07-01", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stranger makes a service principal with no role assignment (POST /sys/principals, as
// `operator principal create` does) and returns its credential.
func (e *env) stranger(t *testing.T) azcore.TokenCredential {
	t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", e.srv.URL+"/sys/principals", strings.NewReader(`{"displayName":"ap-stranger"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		AppID        string `json:"appId"`
		ClientSecret string `json:"clientSecret"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil || p.ClientSecret == "" {
		t.Fatalf("creating a principal: HTTP %d", resp.StatusCode)
	}
	return e.srv.CredentialFor(e.hc, p.AppID, p.ClientSecret)
}
