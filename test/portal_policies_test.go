package test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/google/uuid"
)

// TestPortal_AccessPolicies: on a vault with the access-policy model, a Contributor adds an
// access policy for a user, changes its secret permissions (keeping the key permissions the
// portal does not show) and removes it, each through the API's update of access policies; a
// bad form is answered next to its field; a Reader sees no controls and a forged post is
// refused with nothing changed.
func TestPortal_AccessPolicies(t *testing.T) {
	pe := newPortalEnv(t, nil)
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	bob := pe.user(t, "bob@contoso.com", "Passw0rd!!")
	carol := pe.user(t, "carol@contoso.com", "Passw0rd!!")
	pe.assign(t, pe.sub(), roleContributor, alice)
	pe.assign(t, pe.sub(), roleReader, carol)
	app := uuid.NewString() // a principal holding key permissions too, set through ARM
	pe.createVault(t, "pol-rg", "polvault", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false),
		AccessPolicies: []*armkeyvault.AccessPolicyEntry{{TenantID: to.Ptr(pe.srv.Admin.TenantID), ObjectID: to.Ptr(app),
			Permissions: &armkeyvault.Permissions{Keys: []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsGet)},
				Secrets: []*armkeyvault.SecretPermissions{to.Ptr(armkeyvault.SecretPermissionsList)}}}}})
	// policies maps each principal's object id to its secret and key permissions, sorted.
	policies := func() map[string][2][]string {
		t.Helper()
		v, err := pe.vaults.Get(context.Background(), "pol-rg", "polvault", nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][2][]string{}
		for _, ap := range v.Properties.AccessPolicies {
			var s, k []string
			for _, p := range ap.Permissions.Secrets {
				s = append(s, strings.ToLower(string(*p)))
			}
			for _, p := range ap.Permissions.Keys {
				k = append(k, strings.ToLower(string(*p)))
			}
			slices.Sort(s)
			slices.Sort(k)
			out[*ap.ObjectID] = [2][]string{s, k}
		}
		return out
	}
	wantPolicy := func(what, oid string, secrets, keys []string) {
		t.Helper()
		got, ok := policies()[oid]
		if !ok || !slices.Equal(got[0], secrets) || !slices.Equal(got[1], keys) {
			t.Fatalf("%s: the policy of %s is %v (present %v), want secrets %v, keys %v", what, oid, got, ok, secrets, keys)
		}
	}
	form := func(principal string, perms ...string) url.Values {
		return url.Values{"policy_principal": {principal}, "policy_perm": perms}
	}

	a := pe.browser(t)
	a.signIn("alice@contoso.com", "Passw0rd!!")
	_, page := a.do("GET", "/portal/vaults/polvault/access", nil, nil)
	if !strings.Contains(page, "Add access policy") || !strings.Contains(page, `id="perm-get" name="policy_perm" value="get" checked`) {
		t.Fatalf("alice's access page has no add form with Get ticked: %s", snippet(page))
	}
	resp, _ := a.do("POST", "/portal/vaults/polvault/access/access-policies", form("bob@contoso.com", "get", "list"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/vaults/polvault/access?done=policysaved" {
		t.Fatalf("adding bob's policy = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantPolicy("added", bob, []string{"get", "list"}, nil)
	_, page = a.do("GET", "/portal/vaults/polvault/access?done=policysaved", nil, nil)
	if !strings.Contains(page, "The access policy was saved.") || !strings.Contains(page, "bob@contoso.com") {
		t.Errorf("the access page after saving: %s", snippet(page))
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"no permission", form("bob@contoso.com"), "Choose at least one secret permission."},
		{"no principal", form("", "get"), "Enter a user&#39;s name"},
		{"an unknown user", form("nobody@contoso.com", "get"), "There is no user named"},
		{"an unknown permission only", form("bob@contoso.com", "all-of-it"), "Choose at least one secret permission."},
	} {
		resp, page := a.do("POST", "/portal/vaults/polvault/access/access-policies", tc.form, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, tc.want) || !strings.Contains(page, `class="field-error"`) {
			t.Errorf("%s: %d, want 400 with %q next to the field: %s", tc.name, resp.StatusCode, tc.want, snippet(page))
		}
	}
	wantPolicy("after the refused forms", bob, []string{"get", "list"}, nil)

	// Edit: the form comes back with bob's permissions ticked; saving replaces them.
	_, page = a.do("GET", "/portal/vaults/polvault/access?policy="+bob, nil, nil)
	if !strings.Contains(page, "Change an access policy") || !strings.Contains(page, `value="list" checked`) || strings.Contains(page, `value="set" checked`) {
		t.Fatalf("the edit form for bob: %s", snippet(page))
	}
	if resp, _ := a.do("POST", "/portal/vaults/polvault/access/access-policies", form(bob, "get", "set"), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("changing bob's policy = %d", resp.StatusCode)
	}
	wantPolicy("changed", bob, []string{"get", "set"}, nil)
	if resp, _ := a.do("POST", "/portal/vaults/polvault/access/access-policies", form(app, "get"), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("changing the application's policy = %d", resp.StatusCode)
	}
	wantPolicy("the portal keeps key permissions", app, []string{"get"}, []string{"get"})

	// carol, a Reader: the policies are listed without controls, and a forged post is refused.
	c := pe.browser(t)
	c.signIn("carol@contoso.com", "Passw0rd!!")
	_, page = c.do("GET", "/portal/vaults/polvault/access", nil, nil)
	if !strings.Contains(page, "bob@contoso.com") || strings.Contains(page, "Add access policy") || strings.Contains(page, "Remove the access policy") {
		t.Errorf("carol's access page: %s", snippet(page))
	}
	for _, path := range []string{"/portal/vaults/polvault/access/access-policies", "/portal/vaults/polvault/access/access-policies/" + bob + "/delete"} {
		resp, page := c.do("POST", path, form("carol@contoso.com", "get", "list", "set", "purge"), nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "accessPolicies/write") {
			t.Errorf("carol's forged post to %s = %d: %s", path, resp.StatusCode, snippet(page))
		}
	}
	if _, ok := policies()[carol]; ok {
		t.Fatal("carol's forged post gave her a policy")
	}
	wantPolicy("after carol's forged posts", bob, []string{"get", "set"}, nil)

	// Remove bob's policy; the application's stays.
	resp, _ = a.do("POST", "/portal/vaults/polvault/access/access-policies/"+bob+"/delete", url.Values{}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/vaults/polvault/access?done=policyremoved" {
		t.Fatalf("removing bob's policy = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if p := policies(); len(p) != 1 {
		t.Fatalf("after the removal, policies %v: want the application's alone", p)
	} else if _, ok := p[bob]; ok {
		t.Fatal("bob's policy is still there")
	}
	if resp, _ := a.do("POST", "/portal/vaults/polvault/access/access-policies/not-a-guid/delete", url.Values{}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("removing a policy by a bad id = %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(readAudit(t, pe.srv), `"operationName":"VaultPatch"`) {
		t.Error("no VaultPatch audit record for the portal's policy changes")
	}
}
