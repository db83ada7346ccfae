package cli

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// policySecrets returns a printed vault's access policies as "objectId" -> secret permissions.
func policySecrets(t *testing.T, out string) map[string][]string {
	t.Helper()
	var v struct {
		Properties struct {
			AccessPolicies []struct {
				ObjectID    string `json:"objectId"`
				Permissions struct {
					Keys    []string `json:"keys"`
					Secrets []string `json:"secrets"`
				} `json:"permissions"`
			} `json:"accessPolicies"`
		} `json:"properties"`
	}
	decode(t, out, &v)
	m := map[string][]string{}
	for _, ap := range v.Properties.AccessPolicies {
		s := slices.Clone(ap.Permissions.Secrets)
		slices.Sort(s)
		m[ap.ObjectID] = append(s, fmt.Sprintf("keys=%d", len(ap.Permissions.Keys)))
	}
	return m
}

// keyvault set-policy, delete-policy, network-rule and update's firewall flags, as az spells
// them, through the built binary against a real server.
func TestCLIKeyvaultPolicyAndNetworkRules(t *testing.T) {
	h := startHarness(t)
	h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID, "-o", "none")
	h.ok(t, "group", "create", "-n", "rg-pol", "-l", "eastus", "-o", "none")
	if rbac := policySecrets(t, h.ok(t, "keyvault", "create", "-n", "kv-rbac", "-g", "rg-pol")); len(rbac) != 0 {
		t.Fatalf("a new RBAC vault holds access policies %v", rbac)
	}
	created := policySecrets(t, h.ok(t, "keyvault", "create", "-n", "kv-pol", "-g", "rg-pol", "--enable-rbac-authorization", "false"))
	if len(created) != 1 {
		t.Fatalf("a new vault holds %v, want the creator's policy", created)
	}
	var adminOID string
	for oid := range created {
		adminOID = oid
	}
	const oid = "0a0a0a0a-1111-4111-8111-000000000001"

	t.Run("set-policy and delete-policy", func(t *testing.T) {
		got := policySecrets(t, h.ok(t, "keyvault", "set-policy", "-n", "kv-pol", "--object-id", oid, "--secret-permissions", "get", "LIST", "get"))
		if !reflect.DeepEqual(got[oid], []string{"get", "list", "keys=0"}) {
			t.Fatalf("set-policy (new entry): %v", got)
		}
		got = policySecrets(t, h.ok(t, "keyvault", "set-policy", "-n", "kv-pol", "-g", "rg-pol", "--object-id", oid, "--key-permissions", "get"))
		if !reflect.DeepEqual(got[oid], []string{"get", "list", "keys=1"}) {
			t.Fatalf("set-policy without --secret-permissions must keep them: %v", got)
		}
		got = policySecrets(t, h.ok(t, "keyvault", "set-policy", "-n", "kv-pol", "--object-id", oid, "--secret-permissions", "set"))
		if !reflect.DeepEqual(got[oid], []string{"set", "keys=1"}) {
			t.Fatalf("set-policy replaces the secret list: %v", got)
		}
		if len(got) != 2 || got[adminOID] == nil {
			t.Fatalf("the creator's entry changed: %v", got)
		}
		// --spn resolves through Graph; the admin's application id names the admin.
		got = policySecrets(t, h.ok(t, "keyvault", "set-policy", "-n", "kv-pol", "--spn", h.admin.ClientID, "--secret-permissions", "all"))
		if !reflect.DeepEqual(got[adminOID], []string{"all", "keys=1"}) {
			t.Fatalf("set-policy --spn: %v (admin %s)", got, adminOID)
		}
		if r := h.fail(t, "keyvault", "set-policy", "-n", "kv-pol", "--upn", "nobody@example.com", "--secret-permissions", "get"); !strings.Contains(r.stderr, "nobody@example.com") {
			t.Errorf("unknown upn: %q", r.stderr)
		}
		if r := h.fail(t, "keyvault", "set-policy", "-n", "kv-pol", "--object-id", oid, "--secret-permissions", "read"); !strings.Contains(r.stderr, "invalid choice: 'read'") {
			t.Errorf("bad permission: %q", r.stderr)
		}
		if r := h.fail(t, "keyvault", "set-policy", "-n", "kv-pol", "--secret-permissions", "get"); !strings.Contains(r.stderr, "--object-id OBJECT_ID | --spn SPN | --upn UPN") {
			t.Errorf("no principal: %q", r.stderr)
		}
		h.fail(t, "keyvault", "set-policy", "-n", "kv-pol", "--object-id", oid, "--spn", "x", "--secret-permissions", "get")

		got = policySecrets(t, h.ok(t, "keyvault", "delete-policy", "-n", "kv-pol", "--object-id", oid))
		if _, ok := got[oid]; ok || len(got) != 1 {
			t.Fatalf("delete-policy: %v", got)
		}
		if r := h.fail(t, "keyvault", "delete-policy", "-n", "kv-pol", "--object-id", oid); !strings.Contains(r.stderr, "No matching policies found") {
			t.Errorf("delete-policy of a missing entry: %q", r.stderr)
		}
	})

	t.Run("network rules", func(t *testing.T) {
		if out := h.ok(t, "keyvault", "network-rule", "list", "-n", "kv-pol", "--query", "ipRules[].value", "-o", "tsv"); out != "" {
			t.Fatalf("a new vault lists rules %q", out)
		}
		h.ok(t, "keyvault", "network-rule", "add", "-n", "kv-pol", "--ip-address", "10.0.0.0/8", "127.0.0.1", "-o", "none")
		h.ok(t, "keyvault", "network-rule", "add", "-n", "kv-pol", "--ip-address", "127.0.0.1/32", "-o", "none") // the same rule
		if out := h.ok(t, "keyvault", "network-rule", "list", "-n", "kv-pol", "--query", "ipRules[].value", "-o", "tsv"); out != "10.0.0.0/8\n127.0.0.1\n" {
			t.Fatalf("after add: %q", out)
		}
		upd := decodeMap(t, h.ok(t, "keyvault", "update", "-n", "kv-pol", "--default-action", "Deny", "--bypass", "None", "--public-network-access", "Disabled"))
		props, _ := upd["properties"].(map[string]any)
		acls, _ := props["networkAcls"].(map[string]any)
		if acls["defaultAction"] != "Deny" || acls["bypass"] != "None" || props["publicNetworkAccess"] != "Disabled" {
			t.Fatalf("update printed %v", props)
		}
		if rules, _ := acls["ipRules"].([]any); len(rules) != 2 {
			t.Fatalf("update dropped the ip rules: %v", acls)
		}
		h.ok(t, "keyvault", "network-rule", "remove", "-n", "kv-pol", "--ip-address", "127.0.0.1/32", "-o", "none")
		if out := h.ok(t, "keyvault", "network-rule", "list", "-n", "kv-pol", "--query", "[defaultAction, ipRules[].value]", "-o", "json"); strings.Join(strings.Fields(out), "") != `["Deny",["10.0.0.0/8"]]` {
			t.Fatalf("after remove: %s", out)
		}
		if r := h.fail(t, "keyvault", "network-rule", "add", "-n", "kv-pol", "--ip-address", "10.0.0.0/33"); !strings.Contains(r.stderr, "10.0.0.0/33") {
			t.Errorf("bad address: %q", r.stderr)
		}
		h.fail(t, "keyvault", "network-rule", "add", "-n", "kv-pol")
		upd = decodeMap(t, h.ok(t, "keyvault", "update", "-n", "kv-pol", "--enable-rbac-authorization", "true", "--public-network-access", "Enabled"))
		if props, _ := upd["properties"].(map[string]any); props["enableRbacAuthorization"] != true || props["publicNetworkAccess"] != "Enabled" {
			t.Fatalf("update --enable-rbac-authorization printed %v", props)
		}
	})
}
