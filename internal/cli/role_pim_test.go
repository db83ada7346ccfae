package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// pimCLI runs the just-in-time commands in process with the profile in cfgDir, under `role`
// (registered here until run.go's role group carries them).
func (a *app) pimRoot() *cobra.Command {
	root := a.rootCommand()
	role, _, err := root.Find([]string{"role"})
	if err != nil || role.Name() != "role" {
		return root
	}
	for _, c := range []*cobra.Command{a.roleEligibilityCommand(), a.roleActivateCommand(), a.roleDeactivateCommand(), a.roleApprovalCommand()} {
		if sub, _, err := role.Find([]string{c.Name()}); err != nil || sub == role {
			role.AddCommand(c)
		}
	}
	return root
}

func pimCLI(t *testing.T, cfgDir string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv(configDirEnv, cfgDir)
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	root := a.pimRoot()
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	code := 0
	if err := root.ExecuteContext(t.Context()); err != nil {
		fmt.Fprintln(&stderr, "strongroom: "+errorLine(err))
		code = exitCode(err)
	}
	return code, stdout.String(), stderr.String()
}

func pimOK(t *testing.T, cfgDir string, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := pimCLI(t, cfgDir, args...)
	if code != 0 {
		t.Fatalf("strongroom %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	if strings.HasPrefix(strings.TrimSpace(out), "[") {
		var list []map[string]any
		decode(t, out, &list)
		return map[string]any{"list": list}
	}
	return decodeMap(t, out)
}

// TestCLIRoleJustInTime: an admin makes an application eligible, the application lists its
// eligibility, activates for 1h with a justification, reads a secret, deactivates and is
// refused; with approval required, its activation waits until an approver approves it.
func TestCLIRoleJustInTime(t *testing.T) {
	work := t.TempDir()
	srv := testenv.Start(t, &testenv.Options{DataDir: filepath.Join(work, "strongroom-data")})
	h := &harness{workDir: work, bin: testenv.Binary(t), port: srv.Port, admin: srv.Admin}
	adminCfg, appCfg, approverCfg := filepath.Join(work, "cli-admin"), filepath.Join(work, "cli-app"), filepath.Join(work, "cli-approver")
	h.secrets = []string{h.admin.ClientSecret, "pim-value"}
	as := func(cfg string) *harness {
		c := *h
		c.env = []string{configDirEnv + "=" + cfg}
		return &c
	}
	login := func(cfg, user, secret string) {
		as(cfg).ok(t, "login", "--server", fmt.Sprintf("https://localhost:%d", h.port), "--ca-file", "strongroom-data/tls/ca.pem",
			"--service-principal", "--username", user, "--password", secret, "--tenant", h.admin.TenantID, "-o", "none")
	}
	login(adminCfg, h.admin.ClientID, h.admin.ClientSecret)
	admin := as(adminCfg)
	admin.ok(t, "group", "create", "-n", "rg-jit", "-l", "eastus", "-o", "none")
	vault := decodeMap(t, admin.ok(t, "keyvault", "create", "-n", "kv-jit", "-g", "rg-jit", "--enable-rbac-authorization", "true"))
	scope, _ := vault["id"].(string)
	admin.ok(t, "keyvault", "secret", "set", "--vault-name", "kv-jit", "-n", "db", "--value", "pim-value", "-o", "none")
	principal := func(name string) (string, string) {
		sp := decodeMap(t, admin.ok(t, "operator", "principal", "create", "--display-name", name))
		oid, _ := sp["objectId"].(string)
		appID, _ := sp["appId"].(string)
		secret := fmt.Sprint(sp["clientSecret"])
		h.secrets = append(h.secrets, secret)
		if oid == "" || appID == "" {
			t.Fatalf("principal create printed %v", sp)
		}
		return oid, secret + "\x00" + appID
	}
	appOID, appCred := principal("jit-app")
	approverOID, approverCred := principal("jit-approver")
	split := func(c string) (string, string) { p := strings.SplitN(c, "\x00", 2); return p[1], p[0] }
	appID, appSecret := split(appCred)
	login(appCfg, appID, appSecret)
	apID, apSecret := split(approverCred)
	login(approverCfg, apID, apSecret)
	app := as(appCfg)

	if code, _, errOut := pimCLI(t, appCfg, "role", "activate", "--role", "Key Vault Secrets User", "--scope", scope, "--justification", "x"); code == 0 || !strings.Contains(errOut, "not eligible") {
		t.Fatalf("activation without eligibility: %d %q", code, errOut)
	}
	made := pimOK(t, adminCfg, "role", "eligibility", "create", "--assignee-object-id", appOID, "--role", "Key Vault Secrets User", "--scope", scope, "--duration", "P30D")
	if made["status"] != "Provisioned" || made["roleDefinitionName"] != "Key Vault Secrets User" {
		t.Fatalf("eligibility create printed %v", made)
	}
	mine := pimOK(t, appCfg, "role", "eligibility", "list", "--scope", scope)["list"].([]map[string]any)
	if len(mine) != 1 || mine[0]["principalId"] != appOID {
		t.Fatalf("eligibility list: %v", mine)
	}
	app.fail(t, "keyvault", "secret", "show", "--vault-name", "kv-jit", "-n", "db")

	if code, _, errOut := pimCLI(t, appCfg, "role", "activate", "--role", "Key Vault Secrets User", "--scope", scope, "--duration", "PT1H"); code == 0 || !strings.Contains(errOut, "JustificationRule") {
		t.Fatalf("activation without justification: %d %q", code, errOut)
	}
	if code, _, errOut := pimCLI(t, appCfg, "role", "activate", "--role", "Key Vault Secrets User", "--scope", scope, "--duration", "ten minutes"); code == 0 || !strings.Contains(errOut, "ISO 8601") {
		t.Fatalf("bad duration: %d %q", code, errOut)
	}
	on := pimOK(t, appCfg, "role", "activate", "--role", "Key Vault Secrets User", "--scope", scope, "--justification", "incident 7", "--duration", "1h")
	if on["status"] != "Provisioned" {
		t.Fatalf("activate printed %v", on)
	}
	if sec := decodeMap(t, app.ok(t, "keyvault", "secret", "show", "--vault-name", "kv-jit", "-n", "db")); sec["value"] != "pim-value" {
		t.Fatalf("secret show: %v", sec)
	}
	off := pimOK(t, appCfg, "role", "deactivate", "--role", rbac.KeyVaultSecretsUserID, "--scope", scope)
	if off["status"] != "Revoked" {
		t.Fatalf("deactivate printed %v", off)
	}
	app.fail(t, "keyvault", "secret", "show", "--vault-name", "kv-jit", "-n", "db")

	// Approval required (set through the policy API; the CLI has no policy verbs).
	tok, err := srv.Credential(srv.HTTPClient()).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"properties":{"rules":[{"id":"Approval_EndUser_Assignment","ruleType":"RoleManagementPolicyApprovalRule","setting":{"isApprovalRequired":true,` +
		`"approvalStages":[{"approvalStageTimeOutInDays":1,"primaryApprovers":[{"id":"` + approverOID + `","userType":"User"}]}]}}]}}`
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+scope+"/providers/Microsoft.Authorization/roleManagementPolicies/"+rbac.PolicyName(scope, rbac.KeyVaultSecretsUserID)+
		"?api-version=2020-10-01", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("policy PATCH: HTTP %d", resp.StatusCode)
	}
	pending := pimOK(t, appCfg, "role", "activate", "--role", "Key Vault Secrets User", "--scope", scope, "--justification", "deploy")
	if pending["status"] != "PendingApproval" {
		t.Fatalf("activate with approval printed %v", pending)
	}
	app.fail(t, "keyvault", "secret", "show", "--vault-name", "kv-jit", "-n", "db")
	if got := pimOK(t, adminCfg, "role", "approval", "list", "--scope", scope)["list"].([]map[string]any); len(got) != 0 {
		t.Fatalf("the admin, not an approver, lists %v", got)
	}
	toReview := pimOK(t, approverCfg, "role", "approval", "list", "--scope", scope)["list"].([]map[string]any)
	if len(toReview) != 1 || toReview[0]["name"] != pending["name"] {
		t.Fatalf("approver's list: %v", toReview)
	}
	if code, _, errOut := pimCLI(t, appCfg, "role", "approval", "approve", "--id", fmt.Sprint(toReview[0]["id"])); code == 0 || !strings.Contains(errOut, "cannot approve") {
		t.Fatalf("self-approval: %d %q", code, errOut)
	}
	ok := pimOK(t, approverCfg, "role", "approval", "approve", "--id", fmt.Sprint(toReview[0]["id"]), "--justification", "checked")
	if ok["status"] != "Provisioned" {
		t.Fatalf("approve printed %v", ok)
	}
	app.ok(t, "keyvault", "secret", "show", "--vault-name", "kv-jit", "-n", "db", "-o", "none")
	if code, _, errOut := pimCLI(t, approverCfg, "role", "approval", "deny", "--id", fmt.Sprint(pending["name"]), "--scope", scope); code == 0 || !strings.Contains(errOut, "RequestNotPending") {
		t.Fatalf("deny after approval: %d %q", code, errOut)
	}
}

func TestISODurationFlag(t *testing.T) {
	cases := []struct{ in, want string }{
		{"PT1H", "PT1H"}, {"pt30m", "PT30M"}, {"P365D", "P365D"}, {"P1DT12H", "P1DT12H"},
		{"1h", "PT1H"}, {"90m", "PT1H30M"}, {"36h", "P1DT12H"}, {"45s", "PT45S"},
		{"P", ""}, {"PT", ""}, {"P1H", ""}, {"PT1.5H", ""}, {"ten minutes", ""}, {"-1h", ""}, {"0s", ""},
	}
	for _, c := range cases {
		got, err := isoDuration("--duration", c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("isoDuration(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
