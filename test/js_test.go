package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// The JavaScript SDK (@azure/identity + @azure/keyvault-secrets) at the versions pinned by
// test/js/package-lock.json, installed with `npm ci` into the user cache once per lock file.
const jsSourceDir = "js"

// jsSkip skips t when the JavaScript toolchain is unavailable, or fails it when the run requires
// every component (STRONGROOM_REQUIRE_ALL=1, as CI sets; STRONGROOM_REQUIRE_JS=1 for this one).
func jsSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("STRONGROOM_REQUIRE_JS") == "1" || os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
		t.Fatalf(format+" (required: STRONGROOM_REQUIRE_ALL=1; install Debian's nodejs and npm)", args...)
	}
	t.Skipf(format+" (set STRONGROOM_REQUIRE_ALL=1 to make this a failure)", args...)
}

// jsWorkspace returns a fresh folder holding test/js's scripts and a node_modules link to the
// SDK installed from the committed lock file. The install lives under the user cache dir in a
// folder named by the lock file's hash, so a second run is offline and takes no time; it is
// made in a temporary folder and renamed into place, so concurrent test processes never see a
// half-installed tree.
func jsWorkspace(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		jsSkip(t, "node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		jsSkip(t, "npm is not installed")
	}
	if out, err := exec.Command(node, "--version").Output(); err != nil {
		jsSkip(t, "node --version: %v", err)
	} else if major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".", 2)[0]); major < 20 {
		jsSkip(t, "node %s is older than the SDK's minimum, 20", strings.TrimSpace(string(out)))
	}
	lock, err := os.ReadFile(filepath.Join(jsSourceDir, "package-lock.json"))
	if err != nil {
		t.Fatalf("reading the lock file: %v", err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "strongroom-test-js")
	installed := filepath.Join(root, "lock-"+hex.EncodeToString(sum[:8]))
	if !jsInstalled(installed) {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp, err := os.MkdirTemp(root, "install-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp) // gone after the rename; left over only on failure
		for _, f := range []string{"package.json", "package-lock.json"} {
			if err := copyFile(filepath.Join(jsSourceDir, f), filepath.Join(tmp, f)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// --ignore-scripts: none of the locked packages needs an install script.
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			jsSkip(t, "npm ci of test/js/package-lock.json failed: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, installed); err != nil && !jsInstalled(installed) {
			t.Fatalf("moving the install into place: %v", err)
		}
	}
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(installed, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(jsSourceDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".mjs" || ext == ".cjs" || e.Name() == "package.json") {
			if err := copyFile(filepath.Join(jsSourceDir, e.Name()), filepath.Join(work, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return work
}

// jsInstalled reports whether dir holds a finished install of both SDK packages.
func jsInstalled(dir string) bool {
	for _, p := range []string{"@azure/identity", "@azure/keyvault-secrets"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			return false
		}
	}
	return true
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}

// jsNode runs a script of the workspace with node, *.localhost resolving to loopback
// (localhost.cjs), an environment of nothing but env (not even PATH: node is run by its full
// path, and nothing of the developer's AZURE_* or proxy settings leaks in), and a deadline.
func jsNode(ctx context.Context, work string, env []string, args ...string) *exec.Cmd {
	node, _ := exec.LookPath("node")
	cmd := exec.CommandContext(ctx, node, append([]string{"--require", "./localhost.cjs"}, args...)...)
	cmd.Dir = work
	cmd.Env = append([]string{}, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// jsResult is one line of suite.mjs's output.
type jsResult struct {
	Credential string `json:"credential"`
	Operation  string `json:"operation"`
	OK         bool   `json:"ok"`
	Error      string `json:"error"`
}

// TestJavaScriptSDK runs test/js/suite.mjs against a real server with each of the three
// credentials an application would use, and records every operation in the client table:
//   - ClientSecretCredential, configured in code (authority host, no instance discovery, the
//     CA through tlsOptions), as a service principal with Key Vault Secrets Officer on its vault;
//   - ManagedIdentityCredential() through the identity agent (App Service protocol), as a
//     user-assigned identity with the same role;
//   - DefaultAzureCredential() configured by environment variables alone.
//
// Each has its own vault, plus a vault it has no role on (403) and a purge-protected one with a
// Deny policy; a second server with a tiny request budget shows 429 and the SDK's retry.
func TestJavaScriptSDK(t *testing.T) {
	work := jsWorkspace(t)
	start := time.Now()
	e := newEnv(t, nil)
	ctx := context.Background()
	const rg = "js-rg"
	for _, v := range []string{"js-cs", "js-mi", "js-dac"} {
		e.createVault(t, rg, v, nil)
	}
	denied := e.createVault(t, rg, "js-denied", nil)
	if _, err := denied.SetSecret(ctx, "present", azsecrets.SetSecretParameters{Value: to.Ptr("not for you")}, nil); err != nil {
		t.Fatal(err)
	}
	e.createVault(t, rg, "js-pp", &armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true), SoftDeleteRetentionInDays: to.Ptr[int32](7)})
	// Azure Policy's "Key Vault secrets should have an expiration date", denying.
	e.assign(t, e.vaultScope(rg, "js-pp"), "js-secrets-expire", "98728c90-32c7-4049-8429-847dc0f4fe37", "Deny", "", nil)
	roles := e.rbacClients(t, e.cred)
	officer := func(principalID, principalType string, vaults ...string) {
		t.Helper()
		for _, v := range vaults {
			if _, err := roles.assignAs(ctx, e.vaultScope(rg, v), rbac.KeyVaultSecretsOfficerID, principalID, principalType); err != nil {
				t.Fatalf("assigning Key Vault Secrets Officer on %s: %v", v, err)
			}
		}
	}
	cs := e.newPrincipal(t, "js-client-secret")
	officer(cs.objectID, "ServicePrincipal", "js-cs", "js-pp")
	dac := e.newPrincipal(t, "js-default")
	officer(dac.objectID, "ServicePrincipal", "js-dac", "js-pp")
	mi, agent := e.jsManagedIdentity(t, rg)
	officer(*mi.Properties.PrincipalID, "ServicePrincipal", "js-mi", "js-pp")
	t.Logf("set-up took %s", time.Since(start).Round(time.Millisecond))

	ca := filepath.Join(e.srv.DataDir, "tls", "ca.pem")
	args := func(vault string) []string {
		return []string{"--vault-url", e.srv.VaultURL(vault), "--denied-vault-url", e.srv.VaultURL("js-denied"),
			"--protected-vault-url", e.srv.VaultURL("js-pp")}
	}
	runs := []struct {
		name string
		args []string
		env  []string
	}{
		{"ClientSecretCredential", append(args("js-cs"), "--credential", "secret", "--ca-file", ca, "--prefix", "cs", "--common"),
			[]string{"SR_TENANT_ID=" + e.srv.Admin.TenantID, "SR_CLIENT_ID=" + cs.appID, "SR_CLIENT_SECRET=" + cs.secret, "SR_AUTHORITY_HOST=" + e.srv.URL}},
		{"ManagedIdentityCredential", append(args("js-mi"), "--credential", "managed-identity", "--prefix", "mi"),
			[]string{"IDENTITY_ENDPOINT=" + agent.endpoint, "IDENTITY_HEADER=" + agent.header, "NODE_EXTRA_CA_CERTS=" + ca,
				"SR_MI_CLIENT_ID=" + *mi.Properties.ClientID, "SR_MI_RESOURCE_ID=" + *mi.ID, "SR_MI_OBJECT_ID=" + *mi.Properties.PrincipalID}},
		// AZURE_TENANT_ID=adfs: the one tenant for which @azure/identity skips MSAL's instance
		// discovery (a request to the public cloud) without a code option; the server serves
		// /adfs as its tenant, and the library then also ignores the challenge's tenant.
		{"DefaultAzureCredential", append(args("js-dac"), "--credential", "default", "--prefix", "dac"),
			[]string{"AZURE_TENANT_ID=adfs", "AZURE_CLIENT_ID=" + dac.appID, "AZURE_CLIENT_SECRET=" + dac.secret,
				"AZURE_AUTHORITY_HOST=" + e.srv.URL, "NODE_EXTRA_CA_CERTS=" + ca}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) { runAndRecordJS(t, work, r.env, r.args) })
	}

	// Throttling needs a server with a budget of a few requests per vault and 10 s.
	t.Run("Throttling", func(t *testing.T) {
		te := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=5"}})
		te.createVault(t, "js-rg", "js-throttle", nil)
		runAndRecordJS(t, work,
			[]string{"SR_TENANT_ID=" + te.srv.Admin.TenantID, "SR_CLIENT_ID=" + te.srv.Admin.ClientID,
				"SR_CLIENT_SECRET=" + te.srv.Admin.ClientSecret, "SR_AUTHORITY_HOST=" + te.srv.URL},
			[]string{"--credential", "secret", "--ca-file", filepath.Join(te.srv.DataDir, "tls", "ca.pem"),
				"--throttle-vault-url", te.srv.VaultURL("js-throttle")})
	})
}

// runAndRecordJS runs suite.mjs, records each operation in the client table and fails t with
// the failed ones.
func runAndRecordJS(t *testing.T, work string, env, args []string) {
	t.Helper()
	began := time.Now()
	results, err := runJSSuite(t, work, env, args)
	var failures []string
	for _, res := range results {
		op := res.Operation
		if res.Credential != "" {
			op = res.Credential + ": " + op
		}
		result := resultPass
		if !res.OK {
			result = resultFail
			failures = append(failures, op+": "+res.Error)
		}
		recordClientResult("javascript", op, result)
	}
	t.Logf("%d operations in %s", len(results), time.Since(began).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Errorf("%d of %d operations failed:\n  %s", len(failures), len(results), strings.Join(failures, "\n  "))
	}
	if err != nil {
		t.Error(err)
	}
}

// runJSSuite runs suite.mjs and parses its lines. The error reports a run that exited non-zero
// without naming a failed operation, said nothing, or printed something else than result lines.
func runJSSuite(t *testing.T, work string, env, args []string) ([]jsResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := jsNode(ctx, work, env, append([]string{"suite.mjs"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var results []jsResult
	var stray []string
	failed := false
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r jsResult
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Operation == "" {
			stray = append(stray, line)
			continue
		}
		failed = failed || !r.OK
		results = append(results, r)
	}
	switch {
	case len(stray) > 0:
		return results, fmt.Errorf("suite.mjs printed lines that are not results:\n%s\nstderr: %s", strings.Join(stray, "\n"), stderr.String())
	case len(results) == 0:
		return nil, fmt.Errorf("suite.mjs reported nothing: %v\nstderr: %s", runErr, stderr.String())
	case runErr != nil && !failed:
		return results, fmt.Errorf("suite.mjs failed without a failed operation: %w\nstderr: %s", runErr, stderr.String())
	case runErr == nil && failed:
		return results, errors.New("suite.mjs exited 0 with failed operations")
	}
	return results, nil
}

// jsManagedIdentity makes a user-assigned identity, registers a host, assigns the identity to
// it and starts the identity agent for it (as TestManagedIdentity_AgentEndToEnd does).
func (e *env) jsManagedIdentity(t *testing.T, rg string) (armmsi.Identity, *agentProcess) {
	t.Helper()
	ctx := context.Background()
	ic, err := armmsi.NewUserAssignedIdentitiesClient(e.srv.Admin.SubscriptionID, e.cred, e.srv.ARMOptions(e.hc))
	if err != nil {
		t.Fatal(err)
	}
	created, err := ic.CreateOrUpdate(ctx, rg, "js-worker", armmsi.Identity{Location: to.Ptr("eastus")}, nil)
	if err != nil {
		t.Fatalf("creating the identity: %v", err)
	}
	mi := created.Identity
	if mi.Properties == nil || mi.Properties.PrincipalID == nil || mi.Properties.ClientID == nil {
		t.Fatalf("created identity: %+v", mi)
	}
	hosts := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/providers/Strongroom.Identity/hosts"
	reg := e.armCall(t, "PUT", hosts+"/js-host?api-version=2024-01-01", "", http.StatusCreated)
	props, _ := reg["properties"].(map[string]any)
	token, _ := props["registrationToken"].(string)
	if token == "" {
		t.Fatalf("no registration token: %v", reg)
	}
	e.armCall(t, "POST", hosts+"/js-host/assignIdentity?api-version=2024-01-01", `{"identityId":"`+*mi.ID+`"}`, http.StatusOK)
	return mi, startAgent(t, e.srv, token)
}
