package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestMonitorLogQuery: the logged-in CLI queries the server's audit log (at the subscription
// and at a vault's scope), pages with --limit and --next-token, and reads the folder itself
// with --dir; both find the same records.
func TestMonitorLogQuery(t *testing.T) {
	h := startHarness(t)
	h.ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID)
	h.ok(t, "group", "create", "--name", "rg-log", "--location", "eastus")
	h.ok(t, "keyvault", "create", "--name", "kv-log", "--resource-group", "rg-log", "--location", "eastus")
	h.secrets = append(h.secrets, "value-1", "value-2")
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "kv-log", "--name", "s1", "--value", "value-1")
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "kv-log", "--name", "s2", "--value", "value-2")

	type rec struct {
		OperationName string `json:"operationName"`
		Properties    struct {
			RequestURI string `json:"requestUri"`
		} `json:"properties"`
	}
	records := func(out string) []rec {
		t.Helper()
		var rs []rec
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return rs
	}
	sets := records(h.ok(t, "monitor", "log", "query", "--vault", "kv-log", "--operation", "SecretSet"))
	if len(sets) != 2 || !strings.Contains(sets[0].Properties.RequestURI, "/secrets/s1") || !strings.Contains(sets[1].Properties.RequestURI, "/secrets/s2") {
		t.Fatalf("SecretSet records: %+v", sets)
	}
	local := records(h.ok(t, "monitor", "log", "query", "--dir", "strongroom-data/audit", "--vault", "kv-log", "--operation", "SecretSet"))
	if len(local) != 2 || local[0] != sets[0] || local[1] != sets[1] {
		t.Errorf("--dir found %+v, the server %+v", local, sets)
	}
	scoped := records(h.ok(t, "monitor", "log", "query", "-g", "rg-log", "--vault", "kv-log", "--secret", "s2"))
	if len(scoped) == 0 {
		t.Error("no records at the vault's scope")
	}
	for _, r := range scoped {
		if !strings.Contains(r.Properties.RequestURI, "/secrets/s2") {
			t.Errorf("a record of another secret: %+v", r)
		}
	}

	// One record a page: stderr says how to continue, and the token continues.
	r := h.run("monitor", "log", "query", "--vault", "kv-log", "--operation", "SecretSet", "--limit", "1")
	_, token, ok := strings.Cut(strings.TrimSpace(r.stderr), "--next-token ")
	if r.code != 0 || !ok || len(records(r.stdout)) != 1 {
		t.Fatalf("first page: exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
	}
	if next := records(h.ok(t, "monitor", "log", "query", "--vault", "kv-log", "--operation", "SecretSet", "--next-token", token)); len(next) != 1 || next[0] != sets[1] {
		t.Errorf("second page %+v", next)
	}

	table := h.ok(t, "monitor", "log", "query", "--vault", "kv-log", "--operation", "SecretSet", "-o", "table")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "Time") || !strings.Contains(lines[2], "s1") {
		t.Errorf("table:\n%s", table)
	}
	h.fail(t, "monitor", "log", "query", "--since", "yesterday")
	h.fail(t, "monitor", "log", "query", "-g", "rg-log")
	h.fail(t, "monitor", "log", "query", "--limit", "0")
}
