package cli

import (
	"fmt"
	"strings"
	"testing"
)

// The az ad verbs against the real server: applications, credentials, service principals
// (create-for-rbac included), users, nested groups and membership checks, and the directory
// role a write needs.
func TestCLIIntegration_AD(t *testing.T) {
	h := startHarness(t)
	login := func(user, pass string) string {
		return h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
			"--service-principal", "--username", user, "--password", pass, "--tenant", h.admin.TenantID)
	}
	login(h.admin.ClientID, h.admin.ClientSecret)

	app := decodeMap(t, h.ok(t, "ad", "app", "create", "--display-name", "billing-api"))
	appID, appObj := app["appId"].(string), app["id"].(string)
	if appID == "" || appObj == "" {
		t.Fatalf("ad app create = %v", app)
	}
	reset := decodeMap(t, h.ok(t, "ad", "app", "credential", "reset", "--id", appID, "--display-name", "ci"))
	pw1, _ := reset["password"].(string)
	if reset["appId"] != appID || len(pw1) != 40 || reset["tenant"] != h.admin.TenantID {
		t.Fatalf("credential reset = %v", reset)
	}
	h.secrets = append(h.secrets, pw1)
	decodeMap(t, h.ok(t, "ad", "app", "credential", "reset", "--id", appObj, "--append"))
	if shown := decodeMap(t, h.ok(t, "ad", "app", "show", "--id", appID)); len(shown["passwordCredentials"].([]any)) != 2 {
		t.Fatalf("after --append: %v", shown["passwordCredentials"])
	}
	decodeMap(t, h.ok(t, "ad", "app", "credential", "reset", "--id", appObj))
	if shown := decodeMap(t, h.ok(t, "ad", "app", "show", "--id", appObj)); len(shown["passwordCredentials"].([]any)) != 1 {
		t.Fatalf("after reset: %v", shown["passwordCredentials"])
	}
	var apps []map[string]any
	decode(t, h.ok(t, "ad", "app", "list", "--app-id", appID), &apps)
	if len(apps) != 1 || apps[0]["id"] != appObj {
		t.Fatalf("ad app list --app-id = %v", apps)
	}

	sp := decodeMap(t, h.ok(t, "ad", "sp", "create", "--id", appID))
	spID, _ := sp["id"].(string)
	var sps []map[string]any
	decode(t, h.ok(t, "ad", "sp", "list", "--spn", appID), &sps)
	if len(sps) != 1 || sps[0]["id"] != spID {
		t.Fatalf("ad sp list --spn = %v", sps)
	}
	if got := decodeMap(t, h.ok(t, "ad", "sp", "show", "--id", appID)); got["id"] != spID {
		t.Fatalf("ad sp show --id appId = %v", got)
	}
	if out := strings.TrimSpace(h.ok(t, "ad", "sp", "show", "--id", spID, "--query", "appId", "-o", "tsv")); out != appID {
		t.Fatalf("ad sp show --query appId = %q", out)
	}

	rbac := decodeMap(t, h.ok(t, "ad", "sp", "create-for-rbac", "--name", "worker"))
	workerPW, _ := rbac["password"].(string)
	h.secrets = append(h.secrets, workerPW)
	if rbac["displayName"] != "worker" || rbac["tenant"] != h.admin.TenantID || len(workerPW) != 40 {
		t.Fatalf("create-for-rbac = %v", rbac)
	}
	h.fail(t, "ad", "sp", "create-for-rbac", "--name", "x", "--role", "Reader")

	// The story: an application with least privilege on one vault.
	h.ok(t, "group", "create", "--name", "prod", "--location", "eastus")
	h.ok(t, "keyvault", "create", "--name", "billing-prod", "--resource-group", "prod", "--location", "eastus")
	h.ok(t, "keyvault", "create", "--name", "billing-other", "--resource-group", "prod", "--location", "eastus")
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "billing-prod", "--name", "db", "--value", "s3cret-value")
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "billing-other", "--name", "db", "--value", "other-value")
	h.secrets = append(h.secrets, "s3cret-value", "other-value")
	vaultID := "/subscriptions/" + h.admin.SubscriptionID + "/resourceGroups/prod/providers/Microsoft.KeyVault/vaults/billing-prod"
	api := decodeMap(t, h.ok(t, "ad", "sp", "create-for-rbac", "--name", "billing-api", "--role", "Key Vault Secrets User", "--scopes", vaultID))
	apiPW, _ := api["password"].(string)
	h.secrets = append(h.secrets, apiPW)
	login(api["appId"].(string), apiPW)
	if v := strings.TrimSpace(h.ok(t, "keyvault", "secret", "show", "--vault-name", "billing-prod", "--name", "db", "--query", "value", "-o", "tsv")); v != "s3cret-value" {
		t.Fatalf("billing-api reads %q", v)
	}
	h.fail(t, "keyvault", "secret", "show", "--vault-name", "billing-other", "--name", "db")
	h.fail(t, "keyvault", "secret", "set", "--vault-name", "billing-prod", "--name", "db", "--value", "x")
	login(h.admin.ClientID, h.admin.ClientSecret)

	user := decodeMap(t, h.ok(t, "ad", "user", "create", "--display-name", "Alice", "--password", "Passw0rd!!",
		"--user-principal-name", "alice@contoso.com"))
	userID, _ := user["id"].(string)
	if got := decodeMap(t, h.ok(t, "ad", "user", "show", "--id", "Alice@Contoso.com")); got["id"] != userID {
		t.Fatalf("ad user show by UPN = %v", got)
	}
	if r := h.fail(t, "ad", "user", "create", "--display-name", "Weak", "--password", "weak", "--user-principal-name", "weak@contoso.com"); !strings.Contains(r.stderr, "Request_BadRequest") {
		t.Fatalf("weak password: %q", r.stderr)
	}

	sre := decodeMap(t, h.ok(t, "ad", "group", "create", "--display-name", "sre", "--mail-nickname", "sre"))
	oncall := decodeMap(t, h.ok(t, "ad", "group", "create", "--display-name", "oncall", "--mail-nickname", "oncall"))
	sreID, oncallID := sre["id"].(string), oncall["id"].(string)
	h.ok(t, "ad", "group", "member", "add", "--group", "sre", "--member-id", oncallID)
	h.ok(t, "ad", "group", "member", "add", "--group", oncallID, "--member-id", userID)
	if c := decodeMap(t, h.ok(t, "ad", "group", "member", "check", "--group", "sre", "--member-id", userID)); c["value"] != true {
		t.Fatalf("member check (nested) = %v", c)
	}
	var members []map[string]any
	decode(t, h.ok(t, "ad", "group", "member", "list", "--group", "oncall"), &members)
	if len(members) != 1 || members[0]["id"] != userID {
		t.Fatalf("member list = %v", members)
	}
	h.ok(t, "ad", "group", "member", "remove", "--group", sreID, "--member-id", oncallID)
	if c := decodeMap(t, h.ok(t, "ad", "group", "member", "check", "--group", "sre", "--member-id", userID)); c["value"] != false {
		t.Fatalf("member check after removal = %v", c)
	}
	if r := h.fail(t, "ad", "group", "show", "--group", "nope"); r.code != exitNotFound {
		t.Fatalf("show of a missing group: exit %d", r.code)
	}

	// A principal without a directory role reads the directory but cannot write it.
	login(rbac["appId"].(string), workerPW)
	var users []map[string]any
	decode(t, h.ok(t, "ad", "user", "list"), &users)
	if len(users) != 1 {
		t.Fatalf("ad user list as the worker = %v", users)
	}
	if r := h.fail(t, "ad", "group", "create", "--display-name", "x", "--mail-nickname", "x"); !strings.Contains(r.stderr, "Authorization_RequestDenied") {
		t.Fatalf("write without a directory role: %q", r.stderr)
	}

	login(h.admin.ClientID, h.admin.ClientSecret)
	h.ok(t, "ad", "user", "delete", "--id", userID)
	h.ok(t, "ad", "group", "delete", "--group", "oncall")
	h.ok(t, "ad", "sp", "delete", "--id", appID)
	h.ok(t, "ad", "app", "delete", "--id", appID)
	for _, args := range [][]string{{"ad", "user", "show", "--id", userID}, {"ad", "sp", "show", "--id", spID}, {"ad", "app", "show", "--id", appObj}} {
		if r := h.fail(t, args...); r.code != exitNotFound || !strings.Contains(r.stderr, "Request_ResourceNotFound") {
			t.Fatalf("%v after delete: exit %d %q", args, r.code, r.stderr)
		}
	}
}
