package cli

import (
	"fmt"
	"strings"
	"testing"
)

// role assignment and role definition, as az spells them, through the built binary against a
// real server.
func TestCLIRoleAssignmentsAndDefinitions(t *testing.T) {
	h := startHarness(t)
	h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID, "-o", "none")
	h.ok(t, "group", "create", "-n", "rg-role", "-l", "eastus", "-o", "none")
	vault := decodeMap(t, h.ok(t, "keyvault", "create", "-n", "kv-role", "-g", "rg-role", "--enable-rbac-authorization", "true"))
	scope, _ := vault["id"].(string)
	sp := decodeMap(t, h.ok(t, "operator", "principal", "create", "--display-name", "role-test"))
	oid, _ := sp["objectId"].(string)
	if oid == "" {
		t.Fatalf("principal create printed %v", sp)
	}
	h.secrets = append(h.secrets, fmt.Sprint(sp["clientSecret"]))

	var defs []map[string]any
	decode(t, h.ok(t, "role", "definition", "list", "--name", "Key Vault Secrets User"), &defs)
	if len(defs) != 1 || defs[0]["name"] != "4633458b-17de-408a-b874-0445c86b69e6" || defs[0]["roleType"] != "BuiltInRole" {
		t.Fatalf("definition list --name: %v", defs)
	}

	created := decodeMap(t, h.ok(t, "role", "assignment", "create", "--assignee-object-id", oid, "--assignee-principal-type", "ServicePrincipal",
		"--role", "Key Vault Secrets User", "--scope", scope))
	if created["principalId"] != oid || created["scope"] != scope || !strings.HasSuffix(fmt.Sprint(created["roleDefinitionId"]), "/4633458b-17de-408a-b874-0445c86b69e6") {
		t.Fatalf("create printed %v", created)
	}
	if r := h.fail(t, "role", "assignment", "create", "--assignee-object-id", oid, "--role", "Key Vault Secrets User", "--scope", scope); !strings.Contains(r.stderr, "already exists") {
		t.Errorf("duplicate: %q", r.stderr)
	}
	if r := h.fail(t, "role", "assignment", "create", "--assignee-object-id", oid, "--role", "No Such Role", "--scope", scope); !strings.Contains(r.stderr, "No Such Role") {
		t.Errorf("unknown role: %q", r.stderr)
	}
	if r := h.fail(t, "role", "assignment", "create", "--assignee-object-id", "0a0a0a0a-1111-4111-8111-000000000002", "--role", "Key Vault Secrets User", "--scope", scope); !strings.Contains(r.stderr, "PrincipalNotFound") {
		t.Errorf("unknown principal: %q", r.stderr)
	}

	var listed []map[string]any
	decode(t, h.ok(t, "role", "assignment", "list", "--scope", scope, "--assignee", oid), &listed)
	if len(listed) != 1 || listed[0]["roleDefinitionName"] != "Key Vault Secrets User" {
		t.Fatalf("list --assignee: %v", listed)
	}
	// At the subscription, the vault's assignment is below: only --all shows it.
	decode(t, h.ok(t, "role", "assignment", "list", "--assignee", oid), &listed)
	if len(listed) != 0 {
		t.Fatalf("list at the subscription without --all: %v", listed)
	}
	decode(t, h.ok(t, "role", "assignment", "list", "--assignee", oid, "--all"), &listed)
	if len(listed) != 1 {
		t.Fatalf("list --all: %v", listed)
	}

	h.ok(t, "role", "assignment", "delete", "--assignee", oid, "--role", "Key Vault Secrets User", "--scope", scope)
	decode(t, h.ok(t, "role", "assignment", "list", "--scope", scope, "--assignee", oid), &listed)
	if len(listed) != 0 {
		t.Fatalf("after delete: %v", listed)
	}

	sub := "/subscriptions/" + h.admin.SubscriptionID
	custom := decodeMap(t, h.ok(t, "role", "definition", "create", "--role-definition",
		`{"Name":"Secret Lister","Description":"lists","DataActions":["Microsoft.KeyVault/vaults/secrets/readMetadata/action"],"AssignableScopes":["`+sub+`"]}`))
	if custom["roleName"] != "Secret Lister" || custom["roleType"] != "CustomRole" {
		t.Fatalf("custom role: %v", custom)
	}
	shown := decodeMap(t, h.ok(t, "role", "definition", "show", "--name", "Secret Lister"))
	if shown["name"] != custom["name"] {
		t.Fatalf("show: %v", shown)
	}
	decode(t, h.ok(t, "role", "definition", "list", "--custom-role-only"), &defs)
	if len(defs) != 1 {
		t.Fatalf("custom only: %v", defs)
	}
	h.ok(t, "role", "definition", "delete", "--name", "Secret Lister")
	if r := h.fail(t, "role", "definition", "show", "--name", "Secret Lister"); !strings.Contains(r.stderr, "Secret Lister") {
		t.Errorf("deleted role: %q", r.stderr)
	}
}
