package cli

import (
	"fmt"
	"strings"
	"testing"
)

// identity and identity host, as az (and we) spell them, through the built binary against a
// real server: the issue's `identity create` story, a host registered with its one-time token
// shown once, an identity assigned and unassigned by name or resource id.
func TestCLIIdentityAndHosts(t *testing.T) {
	h := startHarness(t)
	h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID, "-o", "none")
	h.ok(t, "group", "create", "-n", "prod", "-l", "westeurope", "-o", "none")
	vault := decodeMap(t, h.ok(t, "keyvault", "create", "-n", "kv-mi", "-g", "prod", "--enable-rbac-authorization", "true"))

	mi := decodeMap(t, h.ok(t, "identity", "create", "--name", "billing-worker", "--resource-group", "prod", "--tags", "team=billing"))
	principalID, _ := mi["principalId"].(string)
	if mi["location"] != "westeurope" || mi["resourceGroup"] != "prod" || principalID == "" || mi["clientId"] == "" ||
		mi["tenantId"] != h.admin.TenantID || mi["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities" {
		t.Fatalf("identity create printed %v", mi)
	}
	h.ok(t, "role", "assignment", "create", "--assignee", principalID, "--role", "Key Vault Secrets User", "--scope", fmt.Sprint(vault["id"]), "-o", "none")
	if got := decodeMap(t, h.ok(t, "identity", "show", "--ids", fmt.Sprint(mi["id"]))); got["principalId"] != principalID {
		t.Fatalf("identity show --ids: %v", got)
	}
	var listed []map[string]any
	decode(t, h.ok(t, "identity", "list", "-g", "prod"), &listed)
	if len(listed) != 1 || listed[0]["name"] != "billing-worker" {
		t.Fatalf("identity list -g: %v", listed)
	}
	decode(t, h.ok(t, "identity", "list"), &listed)
	if len(listed) != 1 {
		t.Fatalf("identity list: %v", listed)
	}
	if r := h.fail(t, "identity", "show", "-n", "nobody", "-g", "prod"); !strings.Contains(r.stderr, "not found") {
		t.Errorf("show a missing identity: %q", r.stderr)
	}

	reg := decodeMap(t, h.ok(t, "identity", "host", "register", "--name", "web-1", "--token-lifetime", "10m"))
	props, _ := reg["properties"].(map[string]any)
	token, _ := props["registrationToken"].(string)
	if !strings.HasPrefix(token, "srh1.web-1.") || props["registered"] != false {
		t.Fatalf("host register printed %v", reg)
	}
	h.secrets = append(h.secrets, token)
	shown := decodeMap(t, h.ok(t, "identity", "host", "show", "--name", "web-1"))
	if p := shown["properties"].(map[string]any); p["registrationToken"] != nil || p["registrationTokenExpiresOn"] == nil {
		t.Fatalf("host show reveals the token or no expiry: %v", shown)
	}
	assigned := decodeMap(t, h.ok(t, "identity", "host", "assign", "--host", "web-1", "--identity", "billing-worker", "-g", "prod"))
	ids, _ := assigned["properties"].(map[string]any)["identities"].([]any)
	if len(ids) != 1 || ids[0].(map[string]any)["principalId"] != principalID {
		t.Fatalf("host assign printed %v", assigned)
	}
	decode(t, h.ok(t, "identity", "host", "list"), &listed)
	if len(listed) != 1 || listed[0]["name"] != "web-1" {
		t.Fatalf("host list: %v", listed)
	}
	h.ok(t, "identity", "host", "unassign", "--host", "web-1", "--identity", fmt.Sprint(mi["id"]), "-o", "none")
	if r := h.fail(t, "identity", "host", "unassign", "--host", "web-1", "--identity", fmt.Sprint(mi["id"])); !strings.Contains(r.stderr, "not assigned") {
		t.Errorf("unassign twice: %q", r.stderr)
	}
	if r := h.fail(t, "identity", "host", "assign", "--host", "web-1", "--identity", "billing-worker"); !strings.Contains(r.stderr, "--resource-group") {
		t.Errorf("a name without -g: %q", r.stderr)
	}
	h.ok(t, "identity", "host", "remove", "--name", "web-1")
	decode(t, h.ok(t, "identity", "host", "list"), &listed)
	if len(listed) != 0 {
		t.Fatalf("host list after remove: %v", listed)
	}

	if r := h.fail(t, "identity", "agent", "--listen", "0.0.0.0:42356", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--data-dir", t.TempDir()); !strings.Contains(r.stderr, "loopback only") {
		t.Errorf("agent on a public address: %q", r.stderr)
	}
	if r := h.fail(t, "identity", "agent", "--listen", "127.0.0.1:0", "--server", fmt.Sprintf("https://localhost:%d", h.port),
		"--ca-file", "strongroom-data/tls/ca.pem", "--data-dir", t.TempDir(), "--registration-token", token); !strings.Contains(r.stderr, "unknown, used or expired") {
		t.Errorf("agent with a removed host's token: %q", r.stderr)
	}

	h.ok(t, "identity", "delete", "-n", "billing-worker", "-g", "prod")
	decode(t, h.ok(t, "identity", "list", "-g", "prod"), &listed)
	if len(listed) != 0 {
		t.Fatalf("identity list after delete: %v", listed)
	}
}
