package cli

import (
	"fmt"
	"strings"
	"testing"
)

// The alert commands against the real server: a honeytoken set with `keyvault secret set
// --honeytoken` reads like any secret and its read is listed by `monitor alert list`; rules are
// created, shown, listed and deleted (a built-in rule then returns to its configured settings).
func TestCLIIntegration_MonitorAlert(t *testing.T) {
	h := startHarness(t)
	h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID)
	h.ok(t, "group", "create", "--name", "rgAlerts", "--location", "eastus")
	h.ok(t, "keyvault", "create", "--name", "kvAlerts", "--resource-group", "rgAlerts", "--location", "eastus")
	const value = "decoy-value-never-shown"
	h.secrets = append(h.secrets, value)

	set := decodeMap(t, h.ok(t, "keyvault", "secret", "set", "--vault-name", "kvAlerts", "--name", "billing-db", "--value", value, "--honeytoken"))
	if set["value"] != value || set["tags"] != nil {
		t.Fatalf("secret set --honeytoken printed %v", set)
	}
	var hts []map[string]any
	decode(t, h.ok(t, "monitor", "alert", "honeytoken", "list", "--vault-name", "kvAlerts"), &hts)
	if len(hts) != 1 || hts[0]["name"] != "BILLING-DB" {
		t.Fatalf("honeytoken list = %v", hts)
	}
	shown := decodeMap(t, h.ok(t, "keyvault", "secret", "show", "--vault-name", "kvAlerts", "--name", "billing-db"))
	if shown["value"] != value || shown["tags"] != nil {
		t.Fatalf("the decoy shows as %v", shown)
	}
	var fired []map[string]any
	waitFor(t, "the honeytoken alert", func() bool {
		out := h.ok(t, "monitor", "alert", "list", "--top", "10")
		if strings.Contains(out, value) {
			t.Fatalf("monitor alert list shows the value: %s", out)
		}
		decode(t, out, &fired)
		return len(fired) == 1
	})
	what, _ := fired[0]["what"].(map[string]any)
	if fired[0]["rule"] != "honeytoken" || what["secret"] != "billing-db" || what["vault"] != "kvalerts" {
		t.Fatalf("alert = %v", fired[0])
	}

	rule := decodeMap(t, h.ok(t, "monitor", "alert", "rule", "create", "--name", "bruteForce", "--threshold", "3", "--window", "2m"))
	props, _ := rule["properties"].(map[string]any)
	if props["source"] != "api" || props["threshold"] != 3.0 || props["window"] != "2m0s" || props["kind"] != "BruteForce" {
		t.Fatalf("rule create printed %v", rule)
	}
	h.ok(t, "monitor", "alert", "rule", "create", "--name", "sweep", "--kind", "RateSpike", "--threshold", "20", "--enabled=false")
	var rules []map[string]any
	decode(t, h.ok(t, "monitor", "alert", "rule", "list"), &rules)
	if len(rules) != 7 || !hasName(rules, "sweep") || !hasName(rules, "newPattern") || !hasName(rules, "rotationFailure") {
		t.Fatalf("rule list = %v", rules)
	}
	if r := h.fail(t, "monitor", "alert", "rule", "create", "--name", "custom", "--threshold", "3"); !strings.Contains(r.stderr, "properties.kind") {
		t.Fatalf("a rule without a kind: %q", r.stderr)
	}
	if r := h.fail(t, "monitor", "alert", "rule", "create", "--name", "bruteForce", "--window", "soon"); !strings.Contains(r.stderr, "--window") {
		t.Fatalf("a bad window: %q", r.stderr)
	}
	h.ok(t, "monitor", "alert", "rule", "delete", "--name", "bruteForce")
	h.ok(t, "monitor", "alert", "rule", "delete", "--name", "sweep")
	back := decodeMap(t, h.ok(t, "monitor", "alert", "rule", "show", "--name", "bruteForce"))
	if props, _ := back["properties"].(map[string]any); props["source"] != "config" || props["threshold"] != 10.0 {
		t.Fatalf("after delete: %v", back)
	}
	h.fail(t, "monitor", "alert", "rule", "show", "--name", "sweep")

	h.ok(t, "monitor", "alert", "honeytoken", "remove", "--vault-name", "kvAlerts", "--name", "billing-db")
	decode(t, h.ok(t, "monitor", "alert", "honeytoken", "list", "--vault-name", "kvAlerts"), &hts)
	if len(hts) != 0 {
		t.Fatalf("after remove: %v", hts)
	}
}
