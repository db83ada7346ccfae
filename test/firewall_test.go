package test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// forwardedFor is an http.Client transport that adds an X-Forwarded-For header, as a reverse
// proxy in front of the server would (or a client trying to pass as another address).
type forwardedFor struct {
	base http.RoundTripper
	xff  string
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.xff)
	return f.base.RoundTrip(r)
}

// withXFF is the env's HTTP client sending X-Forwarded-For: xff on every request.
func (e *env) withXFF(xff string) *http.Client {
	return &http.Client{Transport: forwardedFor{base: e.hc.Transport, xff: xff}}
}

// serverWithProxies starts a server whose config file trusts the given proxy ranges.
func serverWithProxies(t *testing.T, cidrs ...string) *env {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "strongroom.yaml")
	quoted := make([]string, len(cidrs))
	for i, c := range cidrs {
		quoted[i] = "'" + c + "'"
	}
	if err := os.WriteFile(cfg, []byte("trusted_proxies: ["+strings.Join(quoted, ", ")+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return newEnv(t, &testenv.Options{Extra: []string{"--config", cfg}})
}

// setFirewall PATCHes a vault's network settings through ARM, as the Go SDK sends them.
func (e *env) setFirewall(t *testing.T, rg, name string, acls *armkeyvault.NetworkRuleSet, publicAccess string) {
	t.Helper()
	props := &armkeyvault.VaultPatchProperties{NetworkACLs: acls}
	if publicAccess != "" {
		props.PublicNetworkAccess = to.Ptr(publicAccess)
	}
	if _, err := e.vaults.Update(context.Background(), rg, name, armkeyvault.VaultPatchParameters{Properties: props}, nil); err != nil {
		t.Fatalf("updating the firewall of %s: %v", name, err)
	}
}

// rbacVault are the properties of a vault whose data plane the admin reaches through its role
// (the firewall is checked before either permission model).
func rbacVault() *armkeyvault.VaultProperties {
	return &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(true)}
}

func denyExcept(rules ...string) *armkeyvault.NetworkRuleSet {
	acl := &armkeyvault.NetworkRuleSet{DefaultAction: to.Ptr(armkeyvault.NetworkRuleActionDeny), Bypass: to.Ptr(armkeyvault.NetworkRuleBypassOptionsAzureServices),
		IPRules: []*armkeyvault.IPRule{}}
	for _, r := range rules {
		acl.IPRules = append(acl.IPRules, &armkeyvault.IPRule{Value: to.Ptr(r)})
	}
	return acl
}

// wantFirewall asserts err is Key Vault's 403 with the inner code, and returns its message.
func wantFirewall(t *testing.T, err error, inner string) string {
	t.Helper()
	re := wantStatus(t, err, http.StatusForbidden, "Forbidden")
	var body struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if re.RawResponse == nil {
		t.Fatal("no raw response")
	}
	if err := json.NewDecoder(re.RawResponse.Body).Decode(&body); err != nil {
		t.Fatalf("decoding the 403 body: %v", err)
	}
	if body.Error.InnerError.Code != inner {
		t.Fatalf("inner code = %q, want %q (message %q)", body.Error.InnerError.Code, inner, body.Error.Message)
	}
	return body.Error.Message
}

func getOK(t *testing.T, c *azsecrets.Client, name, want string) {
	t.Helper()
	got, err := c.GetSecret(context.Background(), name, "", nil)
	if err != nil {
		t.Fatalf("GetSecret(%s): %v", name, err)
	}
	if *got.Value != want {
		t.Fatalf("GetSecret(%s) = %q, want %q", name, *got.Value, want)
	}
}

// The vault firewall with the connection's address (loopback, 127.0.0.1) and with a header
// from a proxy the server trusts (127.0.0.1/32 here): allowed ranges pass, other addresses get
// 403 ForbiddenByFirewall naming the address judged, every refusal is audited, and
// publicNetworkAccess Disabled refuses everything.
func TestFirewall_TrustedProxy(t *testing.T) {
	e := serverWithProxies(t, "127.0.0.1/32", "::1/128")
	ctx := context.Background()
	admin := e.createVault(t, "rg-fw", "kv-fw", rbacVault())
	if _, err := admin.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: to.Ptr("s3cret")}, nil); err != nil {
		t.Fatal(err)
	}
	direct := admin
	viaProxy := func(xff string) *azsecrets.Client { return e.srv.Secrets("kv-fw", e.cred, e.withXFF(xff)) }

	t.Run("allowed cidr", func(t *testing.T) {
		e.setFirewall(t, "rg-fw", "kv-fw", denyExcept("10.0.0.0/8", "127.0.0.1/32"), "")
		getOK(t, direct, "db", "s3cret")
	})
	t.Run("single address matches as /32", func(t *testing.T) {
		e.setFirewall(t, "rg-fw", "kv-fw", denyExcept("127.0.0.1"), "")
		getOK(t, direct, "db", "s3cret")
	})
	t.Run("denied address", func(t *testing.T) {
		e.setFirewall(t, "rg-fw", "kv-fw", denyExcept("10.0.0.0/8"), "")
		_, err := direct.GetSecret(ctx, "db", "", nil)
		msg := wantFirewall(t, err, "ForbiddenByFirewall")
		for _, want := range []string{
			"Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\n",
			"\r\nCaller: appid=" + e.srv.Admin.ClientID + ";oid=",
			"\r\nVault: kv-fw;location=eastus",
		} {
			if !strings.Contains(msg, want) {
				t.Fatalf("message %q lacks %q", msg, want)
			}
		}
		// Every operation is behind it, writes and lists too.
		_, err = direct.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
		wantFirewall(t, err, "ForbiddenByFirewall")
		_, err = direct.NewListSecretPropertiesPager(nil).NextPage(ctx)
		wantFirewall(t, err, "ForbiddenByFirewall")
	})
	t.Run("trusted proxy header honoured", func(t *testing.T) {
		e.setFirewall(t, "rg-fw", "kv-fw", denyExcept("10.0.0.0/8"), "")
		getOK(t, viaProxy("10.20.30.40"), "db", "s3cret")
		// The right-most address the trusted proxy did not write itself is the client: a
		// spoofed left entry does not help an outside client.
		_, err := viaProxy("10.9.9.9, 198.51.100.7").GetSecret(ctx, "db", "", nil)
		if msg := wantFirewall(t, err, "ForbiddenByFirewall"); !strings.Contains(msg, "Client address: 198.51.100.7\r\n") {
			t.Fatalf("message %q does not name the forwarded client", msg)
		}
		// A chain of trusted hops is skipped.
		getOK(t, viaProxy("10.20.30.40, 127.0.0.1"), "db", "s3cret")
		// A malformed entry leaves the client unknown, which no rule admits.
		_, err = viaProxy("not-an-address").GetSecret(ctx, "db", "", nil)
		if msg := wantFirewall(t, err, "ForbiddenByFirewall"); !strings.Contains(msg, "Client address: unknown\r\n") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("bypass None wording", func(t *testing.T) {
		acl := denyExcept("10.0.0.0/8")
		acl.Bypass = to.Ptr(armkeyvault.NetworkRuleBypassOptionsNone)
		e.setFirewall(t, "rg-fw", "kv-fw", acl, "")
		_, err := direct.GetSecret(ctx, "db", "", nil)
		if msg := wantFirewall(t, err, "ForbiddenByFirewall"); !strings.HasPrefix(msg, "Client address is not authorized and caller was ignored because bypass is set to None\r\n") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("public network access disabled", func(t *testing.T) {
		e.setFirewall(t, "rg-fw", "kv-fw", denyExcept("127.0.0.1/32", "10.0.0.0/8"), "Disabled")
		_, err := direct.GetSecret(ctx, "db", "", nil)
		if msg := wantFirewall(t, err, "ForbiddenByConnection"); !strings.HasPrefix(msg, "Public network access is disabled") {
			t.Fatalf("message %q", msg)
		}
		_, err = viaProxy("10.20.30.40").GetSecret(ctx, "db", "", nil)
		wantFirewall(t, err, "ForbiddenByConnection")
		// Management stays reachable: the firewall guards the data plane only.
		e.setFirewall(t, "rg-fw", "kv-fw", &armkeyvault.NetworkRuleSet{DefaultAction: to.Ptr(armkeyvault.NetworkRuleActionAllow)}, "Enabled")
		getOK(t, direct, "db", "s3cret")
	})
	t.Run("the firewall comes before the permission model", func(t *testing.T) {
		// An access-policy vault naming nobody: the firewall answers first, as in Key Vault.
		c := e.createVault(t, "rg-fw", "kv-fw-ap", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
		e.setFirewall(t, "rg-fw", "kv-fw-ap", denyExcept("10.0.0.0/8"), "")
		_, err := c.GetSecret(ctx, "db", "", nil)
		wantFirewall(t, err, "ForbiddenByFirewall")
	})
	t.Run("refusals are audited", func(t *testing.T) {
		ops := auditOps(t, e.srv.DataDir)
		if ops["SecretGet Failure 403"] < 7 || ops["SecretSet Failure 403"] < 1 || ops["SecretList Failure 403"] < 1 {
			t.Fatalf("audit log: %v, want the firewall's 403s recorded as the refused operations", ops)
		}
		// Behind a trusted proxy the record names the client the proxy vouched for.
		raw, err := os.ReadFile(filepath.Join(e.srv.DataDir, "audit", "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), `"callerIpAddress":"198.51.100.7"`) || !strings.Contains(string(raw), `"callerIpAddress":"10.20.30.40"`) {
			t.Fatal("no audit record names the forwarded client address")
		}
	})
}

// A server that trusts no proxy at the loopback address ignores X-Forwarded-For from it: the
// client is the connection's address, whatever the header claims.
func TestFirewall_UntrustedProxyHeaderIgnored(t *testing.T) {
	e := serverWithProxies(t, "10.0.0.0/8") // trusts proxies, but not the loopback peer
	ctx := context.Background()
	admin := e.createVault(t, "rg-fw2", "kv-fw2", rbacVault())
	if _, err := admin.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	e.setFirewall(t, "rg-fw2", "kv-fw2", denyExcept("10.0.0.0/8"), "")
	spoofed := e.srv.Secrets("kv-fw2", e.cred, e.withXFF("10.20.30.40"))
	_, err := spoofed.GetSecret(ctx, "db", "", nil)
	if msg := wantFirewall(t, err, "ForbiddenByFirewall"); !strings.Contains(msg, "Client address: 127.0.0.1\r\n") {
		t.Fatalf("message %q: the header of an untrusted peer was believed", msg)
	}
	e.setFirewall(t, "rg-fw2", "kv-fw2", denyExcept("127.0.0.0/8"), "")
	getOK(t, spoofed, "db", "v")
	// Another vault without rules is untouched by this one's.
	other := e.createVault(t, "rg-fw2", "kv-open", rbacVault())
	if _, err := other.SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: to.Ptr("y")}, nil); err != nil {
		t.Fatalf("a vault without firewall rules refused: %v", err)
	}
}

// An invalid trusted_proxies value stops the server at start-up with an error naming it.
func TestFirewall_BadTrustedProxyFailsStartup(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "strongroom.yaml")
	if err := os.WriteFile(cfg, []byte("trusted_proxies: ['10.0.0.0/8', '10.0.0.0/33']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t), "server", "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("server started with an invalid trusted proxy:\n%s", out)
	}
	if !strings.Contains(string(out), `trusted_proxies[1]: "10.0.0.0/33"`) {
		t.Fatalf("start-up error does not name the bad range:\n%s", out)
	}
}

// Requests the firewall refuses do not spend the vault's request budget, so a refused client
// cannot throttle the vault for the clients its rules admit; and a name that names no vault
// has no budget at all.
func TestFirewall_RefusalsDoNotSpendTheBudget(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "strongroom.yaml")
	if err := os.WriteFile(cfg, []byte("trusted_proxies: ['127.0.0.1/32']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", cfg, "--vault-requests-per-10s=5"}})
	ctx := context.Background()
	admin := e.createVault(t, "rg-fwb", "kv-fwb", rbacVault())
	if _, err := admin.SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	e.setFirewall(t, "rg-fwb", "kv-fwb", denyExcept("10.0.0.0/8"), "")
	outsider := e.srv.Secrets("kv-fwb", e.cred, e.withXFF("198.51.100.7"))
	for range 20 {
		_, err := outsider.GetSecret(ctx, "db", "", nil)
		wantFirewall(t, err, "ForbiddenByFirewall")
	}
	if _, err := e.srv.Secrets("kv-fwb", e.cred, e.withXFF("10.1.2.3")).GetSecret(ctx, "db", "", nil); err != nil {
		t.Fatalf("an admitted client after 20 refusals: %v", err)
	}
}
