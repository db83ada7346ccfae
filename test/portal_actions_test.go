package test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/strongroom/strongroom/internal/testenv"
)

// The portal's destructive vault actions and its read-only views, driven over HTTPS by a
// plain client (portal_test.go's browser): what is asked before a vault is deleted or its
// permission model switched, the API's refusals next to the field, and the rotation, events,
// policy and audit blades showing what the API answers, or its refusal in words.

// portalConfig writes a config file and returns the flags naming it.
func portalConfig(t *testing.T, body string) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg}
}

var fieldErrorRE = regexp.MustCompile(`<p class="field-error" id="confirm_name-error">([^<]*)</p>`)

// fieldError is the error shown next to the confirmation's name field, "" when none is.
func fieldError(page string) string {
	if m := fieldErrorRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// TestPortal_DeleteVaultAndSwitchModel: switching a vault's permission model and deleting a
// vault take the name typed and a recent sign-in; a wrong name, a stale sign-in and the API's
// refusal are each shown next to the name field, and change nothing.
func TestPortal_DeleteVaultAndSwitchModel(t *testing.T) {
	const recent = 6 * time.Second
	pe := newPortalEnv(t, &testenv.Options{Extra: portalConfig(t, "portal:\n  recent_sign_in: "+recent.String()+"\n")})
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	carol := pe.user(t, "carol@contoso.com", "Passw0rd!!")
	pe.assign(t, pe.sub(), roleContributor, alice)
	pe.assign(t, pe.sub(), roleUserAccess, alice)
	pe.assign(t, pe.sub(), roleContributor, carol) // may delete vaults, not assign roles
	pe.createVault(t, "act-rg", "actvault", nil)
	pe.createVault(t, "act-rg", "gonevault", nil)
	rbacOf := func() bool {
		t.Helper()
		v, err := pe.vaults.Get(context.Background(), "act-rg", "actvault", nil)
		if err != nil {
			t.Fatal(err)
		}
		return deref(v.Properties.EnableRbacAuthorization)
	}

	a := pe.browser(t)
	a.signIn("alice@contoso.com", "Passw0rd!!")
	signedIn := time.Now()
	_, page := a.do("GET", "/portal/vaults/actvault/access", nil, nil)
	if !strings.Contains(page, "Switch to vault access policy") {
		t.Fatalf("alice does not see the switch: %s", snippet(page))
	}
	_, page = a.do("GET", "/portal/vaults/actvault/access/permission-model", nil, nil)
	if !strings.Contains(page, `id="confirm_name"`) || !strings.Contains(page, "Switch actvault to vault access policy?") {
		t.Fatalf("the switch's confirmation: %s", snippet(page))
	}
	resp, page := a.do("POST", "/portal/vaults/actvault/access/permission-model", url.Values{"confirm_name": {"actvaul"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fieldError(page), "exactly") || !rbacOf() {
		t.Fatalf("a switch with a wrong name = %d, field error %q", resp.StatusCode, fieldError(page))
	}
	for _, wantRBAC := range []bool{false, true} {
		resp, _ = a.do("POST", "/portal/vaults/actvault/access/permission-model", url.Values{"confirm_name": {"actvault"}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/vaults/actvault/access?done=switched" {
			t.Fatalf("switch = %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := rbacOf(); got != wantRBAC {
			t.Fatalf("after the switch enableRbacAuthorization = %v, want %v", got, wantRBAC)
		}
	}
	_, page = a.do("GET", "/portal/vaults/actvault/access?done=switched", nil, nil)
	if !strings.Contains(page, "The permission model was switched.") {
		t.Errorf("no status message after the switch: %s", snippet(page))
	}

	// carol may write the vault but not assign roles: no switch control, and the API's
	// refusal of a forged switch is shown next to the field.
	c := pe.browser(t)
	c.signIn("carol@contoso.com", "Passw0rd!!")
	if _, page := c.do("GET", "/portal/vaults/actvault/access", nil, nil); strings.Contains(page, "Switch to") {
		t.Error("carol sees the permission model switch")
	}
	if _, page := c.do("GET", "/portal/vaults/actvault", nil, nil); !strings.Contains(page, "Delete vault") {
		t.Error("carol (Contributor) does not see Delete vault")
	}
	resp, page = c.do("POST", "/portal/vaults/actvault/access/permission-model", url.Values{"confirm_name": {"actvault"}}, nil)
	if msg := fieldError(page); resp.StatusCode != http.StatusForbidden || !strings.Contains(msg, "You do not have permission") ||
		!strings.Contains(msg, "roleAssignments/write") || !rbacOf() {
		t.Fatalf("carol's forged switch = %d, field error %q", resp.StatusCode, msg)
	}

	// A sign-in older than recent_sign_in: the page asks to sign in again and a post is refused.
	if d := time.Until(signedIn.Add(recent + 500*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	_, page = a.do("GET", "/portal/vaults/gonevault/delete", nil, nil)
	if strings.Contains(page, `id="confirm_name"`) || !strings.Contains(page, `href="/portal/login?next=%2Fportal%2Fvaults%2Fgonevault%2Fdelete"`) {
		t.Fatalf("a stale sign-in's delete page: %s", snippet(page))
	}
	resp, page = a.do("POST", "/portal/vaults/gonevault/delete", url.Values{"confirm_name": {"gonevault"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "needs a recent sign-in") {
		t.Fatalf("a delete with a stale sign-in = %d: %s", resp.StatusCode, snippet(page))
	}
	if _, err := pe.vaults.Get(context.Background(), "act-rg", "gonevault", nil); err != nil {
		t.Fatalf("the refused delete deleted the vault: %v", err)
	}

	// Signed in again: a wrong name is refused, the right one deletes the vault.
	a.signIn("alice@contoso.com", "Passw0rd!!")
	_, page = a.do("GET", "/portal/vaults/gonevault", nil, nil)
	if !strings.Contains(page, `href="/portal/vaults/gonevault/delete"`) {
		t.Fatalf("alice does not see Delete vault: %s", snippet(page))
	}
	resp, page = a.do("POST", "/portal/vaults/gonevault/delete", url.Values{"confirm_name": {"GoneVault "}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fieldError(page), "exactly") {
		t.Fatalf("a delete with a wrong name = %d, field error %q", resp.StatusCode, fieldError(page))
	}
	resp, _ = a.do("POST", "/portal/vaults/gonevault/delete", url.Values{"confirm_name": {"gonevault"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/vaults?done=vaultdeleted" {
		t.Fatalf("delete = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, err := pe.vaults.Get(context.Background(), "act-rg", "gonevault", nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("the deleted vault: %v", err)
	}
	_, page = a.do("GET", "/portal/vaults?done=vaultdeleted", nil, nil)
	if !strings.Contains(page, "The key vault was deleted.") || strings.Contains(page, `href="/portal/vaults/gonevault"`) {
		t.Errorf("the vault list after the delete: %s", snippet(page))
	}
	audit := readAudit(t, pe.srv)
	for _, op := range []string{"VaultDelete", "VaultPatch"} {
		if !regexp.MustCompile(`"operationName":"` + op + `".*"clientInfo":"strongroom-portal"`).MatchString(audit) {
			t.Errorf("no %s audit record with the portal as client", op)
		}
	}
}

var requestIDRE = regexp.MustCompile(`<tr data-request-id="([^"]*)">`)
var nextPageRE = regexp.MustCompile(`<a href="([^"]*)">Next page</a>`)

// TestPortal_ReadOnlyViews: a secret's rotation policy and status, the vault's event
// subscriptions, policy compliance and audit records (paged with the API's continuation token,
// exactly the records the API answers) as the API answers them; a person without the right
// sees the API's refusal in words.
func TestPortal_ReadOnlyViews(t *testing.T) {
	flags := portalConfig(t, "events:\n  allowed_destinations: ['127.0.0.0/8']\n  allow_http: true\n")
	pe := newPortalEnv(t, &testenv.Options{Extra: append(flags, "--vault-requests-per-10s=0"), Env: []string{"STRONGROOM_DEV=1"}})
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	bob := pe.user(t, "bob@contoso.com", "Passw0rd!!")
	for _, role := range []string{roleReader, roleSecretsOfficr} {
		pe.assign(t, pe.sub(), role, alice)
	}
	for _, role := range []string{roleReader, roleSecretsUser} {
		pe.assign(t, pe.sub(), role, bob)
	}
	kv := pe.createVault(t, "view-rg", "viewvault", nil)
	vaultID := pe.sub() + "/resourceGroups/view-rg/providers/Microsoft.KeyVault/vaults/viewvault"
	pe.assign(t, vaultID, "3c1f7a52-9e84-4d0b-8a6e-2b5d9c0e7f41", alice) // Strongroom Audit Reader
	ctx := context.Background()
	for i := range 60 { // more records than one page of the audit blade
		if _, err := kv.SetSecret(ctx, "s"+strings.Repeat("x", i%3)+string(rune('a'+i%26)), secretParams("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.SetSecret(ctx, "rotated", secretParams("v"), nil); err != nil {
		t.Fatal(err)
	}
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}},{"trigger":{"timeBeforeExpiry":"P7D"},"action":{"type":"Notify"}}],` +
		`"attributes":{"expiryTime":"P90D"},"rotator":{"kind":"generate","generator":{"length":40}}}`
	if st, m := pe.dataCall(t, pe.cred, "PUT", "viewvault", "/secrets/rotated/rotationpolicy", policy); st != 200 {
		t.Fatalf("setting the rotation policy: %d %v", st, m)
	}
	hook := newEvHook(t)
	pe.subscribe(t, "view-rg", "viewvault", "ops", evSubBody(hook.srv.URL+"/hook?code=s3cret-in-query", "EventGridSchema", 5, "Microsoft.KeyVault.SecretNearExpiry"))
	pe.env.assign(t, vaultID, "need-exp", "98728c90-32c7-4049-8429-847dc0f4fe37", "Audit", "", nil)

	a := pe.browser(t)
	a.signIn("alice@contoso.com", "Passw0rd!!")
	wantPage := func(b *browser, path string, status int, want []string, not ...string) string {
		t.Helper()
		resp, page := b.do("GET", path, nil, nil)
		if resp.StatusCode != status {
			t.Fatalf("GET %s = %d, want %d: %s", path, resp.StatusCode, status, snippet(page))
		}
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
		for _, n := range not {
			if strings.Contains(page, n) {
				t.Errorf("GET %s shows %q", path, n)
			}
		}
		return page
	}
	wantPage(a, "/portal/vaults/viewvault/secrets/rotated", 200, []string{`href="/portal/vaults/viewvault/secrets/rotated/rotation"`})
	wantPage(a, "/portal/vaults/viewvault/secrets/rotated/rotation", 200, []string{"Rotate", "30 days after the latest version was created",
		"Notify", "7 days before the latest version expires", "90 days", "generate", "40 characters", "idle", "Next rotation due"})
	wantPage(a, "/portal/vaults/viewvault/secrets/sa/rotation", 200, []string{"no rotation policy of its own", "Notify", "30 days before the latest version expires"})
	wantPage(a, "/portal/vaults/viewvault/events", 200, []string{"ops", hook.srv.URL + "/hook", "Microsoft.KeyVault.SecretNearExpiry", "Succeeded", "up to 5 attempts"}, "s3cret")
	wantPage(a, "/portal/vaults/viewvault/policy", 200, []string{"need-exp", "Key Vault secrets should have an expiration date", `<td data-label="Effect">Audit</td>`, "Non-compliant: 61", "61 resources in this vault (the vault or its secrets) are not compliant"})

	// The audit blade's pages are the API's pages: the same records in the same order.
	apiIDs := func(q string) (ids []string, next string) {
		m := pe.armCall(t, "GET", vaultID+"/providers/Strongroom.Insights/auditRecords?api-version=2026-01-01"+q, "", 200)
		for _, rec := range m["value"].([]any) {
			ids = append(ids, rec.(map[string]any)["requestId"].(string))
		}
		next, _ = m["nextLink"].(string)
		return ids, next
	}
	rowsOf := func(page string) []string {
		var ids []string
		for _, m := range requestIDRE.FindAllStringSubmatch(page, -1) {
			ids = append(ids, m[1])
		}
		return ids
	}
	page := wantPage(a, "/portal/vaults/viewvault/audit?since=all", 200, []string{"SecretSet", "VaultPut", "Next page"})
	first := rowsOf(page)
	want, _ := apiIDs("&limit=50")
	if strings.Join(first, ",") != strings.Join(want, ",") {
		t.Fatalf("the audit blade's first page (%d rows) is not the API's (%d records)", len(first), len(want))
	}
	m := nextPageRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no next page link")
	}
	page = wantPage(a, html.UnescapeString(m[1]), 200, []string{"First page"})
	second := rowsOf(page)
	all := map[string]bool{}
	for q := "&limit=1000"; ; {
		ids, next := apiIDs(q)
		for _, id := range ids {
			all[id] = true
		}
		if next == "" {
			break
		}
		u, _ := url.Parse(next)
		q = "&limit=1000&$skipToken=" + url.QueryEscape(u.Query().Get("$skipToken"))
	}
	if len(second) == 0 {
		t.Fatal("the second page is empty")
	}
	for _, id := range second {
		if !all[id] || slicesContains(first, id) {
			t.Errorf("the second page shows record %s (answered by the API: %v, on the first page: %v)", id, all[id], slicesContains(first, id))
		}
	}
	wantPage(a, "/portal/vaults/viewvault/audit?since=all&skip=not-a-token", 400, []string{"skipToken"})

	// bob (Reader, Key Vault Secrets User): the refusals in words.
	b := pe.browser(t)
	b.signIn("bob@contoso.com", "Passw0rd!!")
	wantPage(b, "/portal/vaults/viewvault/secrets/rotated/rotation", 403, []string{"You do not have permission", "Key Vault Secrets Officer", "Rotation policy"}, "40 characters")
	wantPage(b, "/portal/vaults/viewvault/audit", 403, []string{"You do not have permission", "Strongroom Audit Reader", "Audit records"}, "data-request-id")
	wantPage(b, "/portal/vaults/viewvault/events", 200, []string{"ops"})
	wantPage(b, "/portal/vaults/viewvault/policy", 200, []string{"need-exp"})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
