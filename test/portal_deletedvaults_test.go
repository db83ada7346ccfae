package test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
)

// TestPortal_DeletedVaults: Manage deleted vaults lists the subscription's deleted vaults;
// Recover brings one back with its secrets; Purge asks for the name typed and then destroys
// one for good; a vault under purge protection offers no Purge and a forged purge is refused;
// a Reader sees no controls and a forged recover is refused with the vault still deleted.
func TestPortal_DeletedVaults(t *testing.T) {
	pe := newPortalEnv(t, nil)
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	carol := pe.user(t, "carol@contoso.com", "Passw0rd!!")
	pe.assign(t, pe.sub(), roleContributor, alice)
	pe.assign(t, pe.sub(), roleReader, carol)
	ctx := context.Background()
	secrets := pe.createVault(t, "del-rg", "delvault", nil)
	if _, err := secrets.SetSecret(ctx, "kept", secretParams("kept-value"), nil); err != nil {
		t.Fatal(err)
	}
	pe.createVault(t, "del-rg", "lockedvault", &armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true)})
	for _, name := range []string{"delvault", "lockedvault"} {
		if _, err := pe.vaults.Delete(ctx, "del-rg", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	deleted := func(name string) bool {
		t.Helper()
		_, err := pe.vaults.GetDeleted(ctx, name, "eastus", nil)
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	}

	a := pe.browser(t)
	a.signIn("alice@contoso.com", "Passw0rd!!")
	if _, page := a.do("GET", "/portal/vaults", nil, nil); !strings.Contains(page, `href="/portal/deleted-vaults"`) {
		t.Fatalf("the vault list has no link to the deleted vaults: %s", snippet(page))
	}
	_, page := a.do("GET", "/portal/deleted-vaults", nil, nil)
	for _, want := range []string{"delvault", "lockedvault", "del-rg", `action="/portal/deleted-vaults/eastus/delvault/recover"`,
		`href="/portal/deleted-vaults/eastus/delvault/purge"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the deleted vaults page lacks %q: %s", want, snippet(page))
		}
	}
	if strings.Contains(page, `href="/portal/deleted-vaults/eastus/lockedvault/purge"`) {
		t.Error("a vault under purge protection offers Purge")
	}

	// Recover: the vault is back in its resource group with its secret.
	resp, _ := a.do("POST", "/portal/deleted-vaults/eastus/delvault/recover", url.Values{}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/vaults/delvault?done=vaultrecovered" {
		t.Fatalf("recover = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := pe.vaults.Get(ctx, "del-rg", "delvault", nil); err != nil {
		t.Fatalf("the recovered vault: %v", err)
	}
	if got, err := secrets.GetSecret(ctx, "kept", "", nil); err != nil || deref(got.Value) != "kept-value" {
		t.Fatalf("the recovered vault's secret: %v", err)
	}
	if _, page := a.do("GET", "/portal/vaults/delvault?done=vaultrecovered", nil, nil); !strings.Contains(page, "The key vault was recovered") {
		t.Errorf("no status message after the recovery: %s", snippet(page))
	}

	// Purge: the name typed, then gone for good.
	if _, err := pe.vaults.Delete(ctx, "del-rg", "delvault", nil); err != nil {
		t.Fatal(err)
	}
	_, page = a.do("GET", "/portal/deleted-vaults/eastus/delvault/purge", nil, nil)
	if !strings.Contains(page, `id="confirm_name"`) || !strings.Contains(page, "Purge delvault?") {
		t.Fatalf("the purge confirmation: %s", snippet(page))
	}
	resp, page = a.do("POST", "/portal/deleted-vaults/eastus/delvault/purge", url.Values{"confirm_name": {"delvaul"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fieldError(page), "exactly") || !deleted("delvault") {
		t.Fatalf("a purge with a wrong name = %d, field error %q", resp.StatusCode, fieldError(page))
	}
	resp, _ = a.do("POST", "/portal/deleted-vaults/eastus/delvault/purge", url.Values{"confirm_name": {"delvault"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/deleted-vaults?done=vaultpurged" {
		t.Fatalf("purge = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if deleted("delvault") {
		t.Fatal("the purged vault is still among the deleted vaults")
	}

	// Purge protection: no confirmation page, and a forged purge is the API's refusal.
	if resp, page := a.do("GET", "/portal/deleted-vaults/eastus/lockedvault/purge", nil, nil); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(page, "Purge protection is on") {
		t.Errorf("the purge page of a protected vault = %d: %s", resp.StatusCode, snippet(page))
	}
	resp, page = a.do("POST", "/portal/deleted-vaults/eastus/lockedvault/purge", url.Values{"confirm_name": {"lockedvault"}}, nil)
	if resp.StatusCode < 400 || fieldError(page) == "" || !deleted("lockedvault") {
		t.Errorf("a forged purge of a protected vault = %d, field error %q", resp.StatusCode, fieldError(page))
	}

	// carol, a Reader: the list without controls, a forged recover refused.
	c := pe.browser(t)
	c.signIn("carol@contoso.com", "Passw0rd!!")
	_, page = c.do("GET", "/portal/deleted-vaults", nil, nil)
	if !strings.Contains(page, "lockedvault") || strings.Contains(page, ">Recover<") || strings.Contains(page, ">Purge<") {
		t.Errorf("carol's deleted vaults page: %s", snippet(page))
	}
	if resp, _ := c.do("POST", "/portal/deleted-vaults/eastus/lockedvault/recover", url.Values{}, nil); resp.StatusCode != http.StatusForbidden || !deleted("lockedvault") {
		t.Errorf("carol's forged recover = %d", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/portal/deleted-vaults/East-US/lockedvault/purge", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a bad location = %d, want 404", resp.StatusCode)
	}
	audit := readAudit(t, pe.srv)
	for _, op := range []string{"VaultRecover", "VaultPurge", "VaultListDeleted"} {
		if !strings.Contains(audit, `"operationName":"`+op+`"`) {
			t.Errorf("no %s audit record", op)
		}
	}
}
