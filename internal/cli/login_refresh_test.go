package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readProfile reads the harness's stored profile.
func (h *harness) readProfile(t *testing.T) (Profile, string) {
	t.Helper()
	path := filepath.Join(h.workDir, "cli-config", profileFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p, path
}

// expireTokens marks every cached access token of the stored profile expired.
func (h *harness) expireTokens(t *testing.T) string {
	t.Helper()
	p, path := h.readProfile(t)
	for i := range p.Tokens {
		p.Tokens[i].ExpiresOn = time.Now().Add(-time.Hour)
	}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p.RefreshToken
}

// A user's login keeps a refresh token (never the password) and the commands renew expired
// access tokens with it, saving the rotated one; `login --use-device-code` signs the user in at
// the server's /devicelogin page.
func TestCLIUserLoginRefreshAndDeviceCode(t *testing.T) {
	h := startHarness(t)
	server := fmt.Sprintf("https://localhost:%d", h.port)
	ca := "strongroom-data/tls/ca.pem"
	h.ok(t, "login", "--server", server, "--ca-file", ca,
		"--service-principal", "--username", h.admin.ClientID, "--password", h.admin.ClientSecret, "--tenant", h.admin.TenantID, "-o", "none")
	const upn, password = "rene@contoso.com", "Correct-Horse-9!"
	h.secrets = append(h.secrets, password)
	h.ok(t, "ad", "user", "create", "--display-name", "Rene", "--user-principal-name", upn, "--password", password, "-o", "none")
	h.ok(t, "group", "create", "-n", "rg-rt", "-l", "eastus", "-o", "none")
	vault := decodeMap(t, h.ok(t, "keyvault", "create", "-n", "kv-rt", "-g", "rg-rt", "--enable-rbac-authorization", "true"))
	h.ok(t, "keyvault", "secret", "set", "--vault-name", "kv-rt", "--name", "greeting", "--value", "hello", "-o", "none")
	h.ok(t, "role", "assignment", "create", "--assignee", upn, "--role", "Key Vault Secrets User", "--scope", fmt.Sprint(vault["id"]), "-o", "none")

	h.ok(t, "login", "--server", server, "--ca-file", ca, "-u", upn, "-p", password, "-o", "none")
	p, path := h.readProfile(t)
	raw, _ := os.ReadFile(path)
	if p.RefreshToken == "" || len(p.Tokens) != 3 || strings.Contains(string(raw), password) {
		t.Fatalf("profile after a password login: refresh token %t, %d tokens, password stored %t",
			p.RefreshToken != "", len(p.Tokens), strings.Contains(string(raw), password))
	}
	show := func() string {
		t.Helper()
		return strings.TrimSpace(h.ok(t, "keyvault", "secret", "show", "--vault-name", "kv-rt", "--name", "greeting", "--query", "value", "-o", "tsv"))
	}
	old := h.expireTokens(t)
	if got := show(); got != "hello" {
		t.Fatalf("secret show with expired access tokens = %q", got)
	}
	if p, _ := h.readProfile(t); p.RefreshToken == "" || p.RefreshToken == old {
		t.Fatal("the refresh did not save the rotated refresh token")
	}
	if got := show(); got != "hello" { // the renewed token, cached
		t.Fatalf("secret show again = %q", got)
	}

	// The device flow: the CLI prints the server's instructions on stderr and polls; the user
	// signs in at the verification page.
	if r := h.fail(t, "login", "--use-device-code", "-u", upn); !strings.Contains(r.stderr, "--use-device-code takes no") {
		t.Errorf("--use-device-code with -u: %q", r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "login", "--server", server, "--ca-file", ca, "--use-device-code")
	cmd.Dir, cmd.Env = h.workDir, append(os.Environ(), h.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the device code message: %v", err)
	}
	m := regexp.MustCompile(`open the page (\S+) and enter the code ([A-Z0-9]+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("device code message %q", line)
	}
	pem, err := os.ReadFile(filepath.Join(h.workDir, ca))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	resp, err := hc.PostForm(m[1], url.Values{"user_code": {m[2]}, "username": {upn}, "password": {password}, "decision": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login --use-device-code: %v", err)
	}
	var accounts []map[string]any
	decode(t, stdout.String(), &accounts)
	if user, _ := accounts[0]["user"].(map[string]any); user["name"] != upn || user["type"] != "user" {
		t.Fatalf("device code login printed %v", accounts)
	}
	h.expireTokens(t)
	if got := show(); got != "hello" {
		t.Fatalf("secret show after the device code login and expiry = %q", got)
	}
}
