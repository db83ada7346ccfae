package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// armCall sends one management-plane request as the bootstrap admin and decodes the answer.
func (e *env) armCall(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// agentProcess is a running `strongroom identity agent`.
type agentProcess struct {
	cmd      *exec.Cmd
	endpoint string // IDENTITY_ENDPOINT
	header   string // IDENTITY_HEADER
	msi      string // MSI_ENDPOINT
	dataDir  string
}

func startAgent(t *testing.T, srv *testenv.Server, token string) *agentProcess {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command(testenv.Binary(t), "identity", "agent", "--listen", "127.0.0.1:0", "--server", srv.URL,
		"--ca-file", filepath.Join(srv.DataDir, "tls", "ca.pem"), "--data-dir", dir, "--registration-token", token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	a := &agentProcess{cmd: cmd, dataDir: dir}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for a.endpoint == "" || a.msi == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the agent exited: %s", stderr.String())
			}
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "IDENTITY_ENDPOINT":
				a.endpoint = v
			case "MSI_ENDPOINT":
				a.msi = v
			}
		case <-deadline:
			t.Fatalf("the agent did not start: %s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	a.header = agentEnvValue(t, dir, "IDENTITY_HEADER") // printed as where it is, not its value
	return a
}

// appServiceToken asks the agent as an application would, without the SDK.
func (a *agentProcess) appServiceToken(t *testing.T, resource, selector string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.endpoint+"?api-version=2019-08-01&resource="+url.QueryEscape(resource)+selector, nil)
	req.Header.Set("X-IDENTITY-HEADER", a.header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// readWithManagedIdentity runs TestManagedIdentityHelperProcess in a child process whose
// environment holds nothing but IDENTITY_ENDPOINT and IDENTITY_HEADER, and returns what it read
// (or its error line).
func readWithManagedIdentity(t *testing.T, srv *testenv.Server, a *agentProcess, vault, secret string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestManagedIdentityHelperProcess$", "-test.count=1", "--",
		srv.VaultURL(vault), filepath.Join(srv.DataDir, "tls", "ca.pem"), secret)
	cmd.Env = []string{"IDENTITY_ENDPOINT=" + a.endpoint, "IDENTITY_HEADER=" + a.header}
	out, _ := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "SECRET="); ok {
			return v, nil
		}
		if v, ok := strings.CutPrefix(l, "ERROR="); ok {
			return "", fmt.Errorf("%s", v)
		}
	}
	return "", fmt.Errorf("the helper said nothing useful: %s", out)
}

// readWithManagedIdentityJS is readWithManagedIdentity with the JavaScript SDK (test/js, from
// jsWorkspace): node runs read-secret.mjs with nothing in its environment but IDENTITY_ENDPOINT
// and IDENTITY_HEADER.
func readWithManagedIdentityJS(t *testing.T, work string, srv *testenv.Server, a *agentProcess, vault, secret string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := jsNode(ctx, work, []string{"IDENTITY_ENDPOINT=" + a.endpoint, "IDENTITY_HEADER=" + a.header},
		"read-secret.mjs", srv.VaultURL(vault), filepath.Join(srv.DataDir, "tls", "ca.pem"), secret)
	out, _ := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "SECRET="); ok {
			return v, nil
		}
		if v, ok := strings.CutPrefix(l, "ERROR="); ok {
			return "", fmt.Errorf("%s", v)
		}
	}
	return "", fmt.Errorf("node said nothing useful: %s", out)
}

// TestManagedIdentityHelperProcess is the application side of TestManagedIdentity_AgentEndToEnd;
// it does nothing in a normal run.
func TestManagedIdentityHelperProcess(t *testing.T) {
	args := flag.Args()
	if os.Getenv("IDENTITY_ENDPOINT") == "" || len(args) != 3 {
		t.Skip("runs only as TestManagedIdentity_AgentEndToEnd's child process")
	}
	vaultURL, caFile, secret := args[0], args[1], args[2]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fmt.Println("ERROR=" + err.Error())
		return
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}}}
	// The credential as an application builds it: no options, no secret, nothing but the
	// environment's two endpoint variables.
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		fmt.Println("ERROR=" + err.Error())
		return
	}
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		fmt.Println("ERROR=" + err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := c.GetSecret(ctx, secret, "", nil)
	if err != nil {
		fmt.Println("ERROR=" + strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Println("SECRET=" + *got.Value)
}

// TestManagedIdentity_AgentEndToEnd: armmsi creates a user-assigned identity, which gets Key
// Vault Secrets User on one vault; a host is registered and the identity assigned to it; the
// agent (the real binary) redeems the host's registration token, and the official
// ManagedIdentityCredential, in a process with nothing but IDENTITY_ENDPOINT and
// IDENTITY_HEADER, reads the secret. Once the identity is unassigned from the host, the agent
// gets no fresh token and the data plane refuses the token it handed out before.
func TestManagedIdentity_AgentEndToEnd(t *testing.T) {
	recordClient(t, "go", "azidentity ManagedIdentityCredential")
	for _, op := range []string{"CreateOrUpdate", "Get", "ListByResourceGroup", "ListBySubscription", "Delete"} {
		recordClient(t, "go", "armmsi UserAssignedIdentities."+op)
	}
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.createVault(t, "mi-rg", "mi-kv", nil)
	if _, err := admin.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("hunter2-but-longer")}, nil); err != nil {
		t.Fatal(err)
	}
	sub := e.srv.Admin.SubscriptionID

	// The identity, through the official armmsi client.
	ic, err := armmsi.NewUserAssignedIdentitiesClient(sub, e.cred, e.srv.ARMOptions(e.hc))
	if err != nil {
		t.Fatal(err)
	}
	created, err := ic.CreateOrUpdate(ctx, "mi-rg", "billing-worker", armmsi.Identity{Location: to.Ptr("eastus"), Tags: map[string]*string{"team": to.Ptr("billing")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mi := created.Identity
	if mi.Properties == nil || mi.Properties.PrincipalID == nil || mi.Properties.ClientID == nil || *mi.Properties.TenantID != e.srv.Admin.TenantID ||
		*mi.Type != "Microsoft.ManagedIdentity/userAssignedIdentities" || *mi.Tags["team"] != "billing" {
		t.Fatalf("created identity: %+v", mi)
	}
	got, err := ic.Get(ctx, "mi-rg", "billing-worker", nil)
	if err != nil || *got.Properties.ClientID != *mi.Properties.ClientID {
		t.Fatalf("get: %v", err)
	}
	other, err := ic.CreateOrUpdate(ctx, "mi-rg", "other-worker", armmsi.Identity{Location: to.Ptr("eastus")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var inGroup, inSub int
	for p := ic.NewListByResourceGroupPager("mi-rg", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inGroup += len(page.Value)
	}
	for p := ic.NewListBySubscriptionPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inSub += len(page.Value)
	}
	if inGroup != 2 || inSub != 2 {
		t.Fatalf("lists: %d in the group, %d in the subscription", inGroup, inSub)
	}
	if _, err := e.rbacClients(t, e.cred).assign(ctx, e.vaultScope("mi-rg", "mi-kv"), rbac.KeyVaultSecretsUserID, *mi.Properties.PrincipalID); err != nil {
		t.Fatalf("assigning Key Vault Secrets User to the identity: %v", err)
	}

	// The host: registered, the identity assigned, the agent started with its one-time token.
	hosts := "/subscriptions/" + sub + "/providers/Strongroom.Identity/hosts"
	reg := e.armCall(t, "PUT", hosts+"/web-1?api-version=2024-01-01", "", http.StatusCreated)
	token, _ := reg["properties"].(map[string]any)["registrationToken"].(string)
	if token == "" {
		t.Fatalf("no registration token: %v", reg)
	}
	e.armCall(t, "POST", hosts+"/web-1/assignIdentity?api-version=2024-01-01", `{"identityId":"`+*mi.ID+`"}`, http.StatusOK)
	agent := startAgent(t, e.srv, token)
	for _, name := range []string{"host.key", "host.crt"} {
		if fi, err := os.Stat(filepath.Join(agent.dataDir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	shown := e.armCall(t, "GET", hosts+"/web-1?api-version=2024-01-01", "", http.StatusOK)
	if p := shown["properties"].(map[string]any); p["registered"] != true || p["registrationToken"] != nil {
		t.Fatalf("host after registration: %v", shown)
	}
	// The token was single use: a second agent cannot redeem it.
	dup := exec.Command(testenv.Binary(t), "identity", "agent", "--listen", "127.0.0.1:0", "--server", e.srv.URL,
		"--ca-file", filepath.Join(e.srv.DataDir, "tls", "ca.pem"), "--data-dir", t.TempDir(), "--registration-token", token)
	if out, err := dup.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown, used or expired") {
		t.Fatalf("a spent registration token: %v %s", err, out)
	}

	value, err := readWithManagedIdentity(t, e.srv, agent, "mi-kv", "db-password")
	if err != nil || value != "hunter2-but-longer" {
		t.Fatalf("ManagedIdentityCredential read %q, %v", value, err)
	}
	var js string // the JavaScript SDK's folder, "" when it is not available here
	t.Run("JavaScript", func(t *testing.T) {
		js = jsWorkspace(t)
		if value, err := readWithManagedIdentityJS(t, js, e.srv, agent, "mi-kv", "db-password"); err != nil || value != "hunter2-but-longer" {
			t.Fatalf("@azure/identity ManagedIdentityCredential read %q, %v", value, err)
		}
	})

	// The protocol without the SDK: shapes, the header check, another identity refused.
	status, tok := agent.appServiceToken(t, "https://vault.azure.net", "")
	if status != http.StatusOK || tok["token_type"] != "Bearer" || tok["client_id"] != *mi.Properties.ClientID || tok["resource"] != "https://vault.azure.net" {
		t.Fatalf("app service answer %d %v", status, tok)
	}
	if _, ok := tok["expires_on"].(string); !ok {
		t.Fatalf("expires_on is not a string: %v", tok)
	}
	if status, _ := agent.appServiceToken(t, "https://vault.azure.net", "&object_id="+*other.Properties.PrincipalID); status != http.StatusBadRequest {
		t.Fatalf("an identity not assigned to the host: %d", status)
	}
	if status, _ := agent.appServiceToken(t, "https://evil.example", ""); status != http.StatusBadRequest {
		t.Fatalf("a resource no plane serves: %d", status)
	}
	req, _ := http.NewRequest("POST", agent.msi, strings.NewReader("resource="+url.QueryEscape("https://vault.azure.net")))
	req.Header.Set("Metadata", "true")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("MSI_ENDPOINT: %v %v", err, resp)
	}
	resp.Body.Close()
	noHeader, _ := http.Get(agent.endpoint + "?api-version=2019-08-01&resource=https://vault.azure.net")
	if noHeader.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no X-IDENTITY-HEADER: %d", noHeader.StatusCode)
	}
	noHeader.Body.Close()
	held := tok["access_token"].(string)
	viaHeld := e.srv.Secrets("mi-kv", staticToken(held), e.hc)
	if _, err := viaHeld.GetSecret(ctx, "db-password", "", nil); err != nil {
		t.Fatalf("the agent's token before unassigning: %v", err)
	}

	// Unassigned: no fresh token, and the token handed out before is refused by the data plane.
	e.armCall(t, "POST", hosts+"/web-1/unassignIdentity?api-version=2024-01-01", `{"identityId":"`+*mi.ID+`"}`, http.StatusOK)
	if status, body := agent.appServiceToken(t, "https://vault.azure.net", ""); status == http.StatusOK {
		t.Fatalf("a fresh token after unassigning: %v", body)
	}
	if _, err := viaHeld.GetSecret(ctx, "db-password", "", nil); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("the data plane after unassigning: %v", err)
	}
	if value, err := readWithManagedIdentity(t, e.srv, agent, "mi-kv", "db-password"); err == nil || !strings.Contains(err.Error(), "no managed identity is assigned to this host") {
		t.Fatalf("ManagedIdentityCredential after unassigning: %q, %v", value, err)
	}
	if js != "" {
		if value, err := readWithManagedIdentityJS(t, js, e.srv, agent, "mi-kv", "db-password"); err == nil {
			t.Fatalf("@azure/identity ManagedIdentityCredential after unassigning: %q", value)
		}
	}

	// Assigned again, then the host removed: the agent is refused.
	e.armCall(t, "POST", hosts+"/web-1/assignIdentity?api-version=2024-01-01", `{"identityId":"`+*mi.ID+`"}`, http.StatusOK)
	if status, _ := agent.appServiceToken(t, "https://vault.azure.net", ""); status != http.StatusOK {
		t.Fatalf("after assigning again: %d", status)
	}
	e.armCall(t, "DELETE", hosts+"/web-1?api-version=2024-01-01", "", http.StatusOK)
	if status, _ := agent.appServiceToken(t, "https://vault.azure.net", ""); status == http.StatusOK {
		t.Fatal("a removed host's agent got a token")
	}

	// Deleting the identity takes its service principal.
	if _, err := ic.Delete(ctx, "mi-rg", "billing-worker", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Get(ctx, "mi-rg", "billing-worker", nil); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// staticToken is a credential that always presents one token, to replay what the agent gave.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}
