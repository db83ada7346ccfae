package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A user logs in by password as az login -u -p does: the profile keeps tokens, not the
// password, and the user works with what its roles allow.
func TestCLIUserLogin(t *testing.T) {
	h := startHarness(t)
	server := fmt.Sprintf("https://localhost:%d", h.port)
	h.ok(t, "login", "--server", server, "--ca-file", "strongroom-data/tls/ca.pem",
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID, "-o", "none")
	const upn, password = "alice@contoso.com", "Correct-Horse-9!"
	h.secrets = append(h.secrets, password)
	h.ok(t, "ad", "user", "create", "--display-name", "Alice", "--user-principal-name", upn, "--password", password, "-o", "none")
	h.ok(t, "group", "create", "-n", "rg-user", "-l", "eastus", "-o", "none")
	vault := decodeMap(t, h.ok(t, "keyvault", "create", "-n", "kv-user", "-g", "rg-user", "--enable-rbac-authorization", "true"))
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "kv-user", "--name", "greeting", "--value", "hello", "-o", "none")
	h.ok(t, "role", "assignment", "create", "--assignee", upn, "--role", "Key Vault Secrets User", "--scope", fmt.Sprint(vault["id"]), "-o", "none")

	if r := h.fail(t, "login", "--server", server, "--ca-file", "strongroom-data/tls/ca.pem", "-u", upn, "-p", "wrong-password"); !strings.Contains(r.stderr, "AADSTS50126") {
		t.Errorf("wrong password: %q", r.stderr)
	}
	var accounts []map[string]any
	decode(t, h.ok(t, "login", "--server", server, "--ca-file", "strongroom-data/tls/ca.pem", "-u", upn, "-p", password), &accounts)
	if user, _ := accounts[0]["user"].(map[string]any); user["name"] != upn || user["type"] != "user" {
		t.Fatalf("login printed %v", accounts)
	}
	if got := h.ok(t, "keyvault", "secret", "show", "--vault-name", "kv-user", "--name", "greeting", "--query", "value", "-o", "tsv"); strings.TrimSpace(got) != "hello" {
		t.Fatalf("secret show as the user: %q", got)
	}
	if r := h.fail(t, "keyvault", "secret", "set", "--vault-name", "kv-user", "--name", "greeting", "--value", "x"); !strings.Contains(r.stderr, "Forbidden") {
		t.Errorf("a secrets user wrote: %q", r.stderr)
	}
	err := filepath.Walk(filepath.Join(h.workDir, "cli-config"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), password) {
			t.Errorf("%s holds the user's password", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
