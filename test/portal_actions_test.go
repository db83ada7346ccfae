package test

import (
	"context"
	"errors"
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
