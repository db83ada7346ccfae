package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// The az conformance suite: Debian's azure-cli package (az 2.45), unmodified, against a real
// server process. Each subtest is one row of the client table (test/clients_table_test.go).
//
// What az needs from its environment, and nothing else: an isolated AZURE_CONFIG_DIR, the
// server's CA in REQUESTS_CA_BUNDLE, no telemetry, and a way to reach {vault}.vault.localhost.
// glibc here does not resolve *.localhost and /etc/hosts has no wildcards, so az's HTTPS goes
// through a CONNECT proxy in this process that sends localhost names to the loopback address
// and refuses every other host (so az cannot reach any network either). The cloud is registered
// with exactly what `strongroom az-config` prints.

// Known defects of Debian's package: the commands fail on the client before any request.
const (
	// The keyvault secret commands import the track-1 SDK, which the package does not ship.
	azMissingKeyVaultSDK = "No module named 'azure.keyvault.v7_0'"
	// The role commands read .config from azure-mgmt-authorization 3.0.0's operation objects,
	// which have only ._config.
	azAuthorizationSDKMismatch = "object has no attribute 'config'"
)

// azBinary finds az, skipping the test when it is missing unless STRONGROOM_REQUIRE_ALL=1.
func azBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("az")
	if err != nil {
		if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
			t.Fatal("az is not installed (required: STRONGROOM_REQUIRE_ALL=1; install Debian's azure-cli)")
		}
		t.Skip("az is not installed (set STRONGROOM_REQUIRE_ALL=1 to make this a failure)")
	}
	return p
}

// localhostProxy is an HTTP CONNECT proxy on loopback that tunnels localhost and *.localhost
// at the server's port to 127.0.0.1 and refuses anything else.
type localhostProxy struct {
	URL     string
	mu      sync.Mutex
	refused []string
}

func startLocalhostProxy(t *testing.T, port int) *localhostProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &localhostProxy{URL: "http://" + l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve(port)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.refused) > 0 {
			t.Logf("the proxy refused: %s", strings.Join(p.refused, ", "))
		}
	})
	return p
}

func (p *localhostProxy) serve(port int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		host, pt, err := net.SplitHostPort(r.Host)
		local := err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) && pt == strconv.Itoa(port)
		if r.Method != http.MethodConnect || !local {
			p.mu.Lock()
			p.refused = append(p.refused, r.Method+" "+r.Host)
			p.mu.Unlock()
			http.Error(w, "this proxy only reaches the test server", http.StatusForbidden)
			return
		}
		upstream, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", pt), 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			conn.Close()
			upstream.Close()
			return
		}
		go func() {
			_, _ = io.Copy(upstream, buf) // buf holds whatever the client sent after the request
			upstream.Close()
		}()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
	}
}

// azCLI is one az installation: its own config folder (and so its own login) and environment.
type azCLI struct {
	bin string
	env []string
}

func newAzCLI(t *testing.T, bin string, srv *testenv.Server, proxy *localhostProxy, extra ...string) *azCLI {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch uk := strings.ToUpper(k); {
		case strings.HasPrefix(uk, "AZURE_"), strings.HasPrefix(uk, "MSI_"), strings.HasPrefix(uk, "IDENTITY_"),
			strings.HasPrefix(uk, "PYTHON"), strings.HasSuffix(uk, "_PROXY"), uk == "REQUESTS_CA_BUNDLE", uk == "CURL_CA_BUNDLE":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"AZURE_CONFIG_DIR="+filepath.Join(t.TempDir(), "az"),
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_NO_COLOR=true",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE="+filepath.Join(srv.DataDir, "tls", "ca.pem"),
		"HTTPS_PROXY="+proxy.URL, "HTTP_PROXY="+proxy.URL,
		// Only the identity agent is reached directly. (A "localhost" entry would also match
		// every *.localhost name: requests compares NO_PROXY entries as suffixes.)
		"NO_PROXY=127.0.0.1",
		// strongroom az-config --apply runs with this environment: no profile of this machine's.
		"STRONGROOM_CONFIG_DIR="+filepath.Join(t.TempDir(), "strongroom"),
	)
	return &azCLI{bin: bin, env: append(env, extra...)}
}

// run runs az once; err is non-nil for a non-zero exit.
func (c *azCLI) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// must runs az and fails t unless it succeeds; it returns stdout.
func (c *azCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		t.Fatalf("az %s: %v\n%s", strings.Join(redactArgs(args), " "), err, errOut)
	}
	return out
}

// object runs az with -o json and decodes a JSON object.
func (c *azCLI) object(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out := c.must(t, append(args, "-o", "json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("az %s: not a JSON object: %v\n%s", strings.Join(redactArgs(args), " "), err, out)
	}
	return m
}

// list runs az with -o json and decodes a JSON array.
func (c *azCLI) list(t *testing.T, args ...string) []any {
	t.Helper()
	out := c.must(t, append(args, "-o", "json")...)
	var l []any
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("az %s: not a JSON array: %v\n%s", strings.Join(redactArgs(args), " "), err, out)
	}
	return l
}

// tsv runs az with -o tsv and returns the trimmed output.
func (c *azCLI) tsv(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(c.must(t, append(args, "-o", "tsv")...))
}

// fails runs az and returns its stderr, failing t if az succeeded.
func (c *azCLI) fails(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(args...)
	if err == nil {
		t.Fatalf("az %s succeeded, want a failure: %s", strings.Join(redactArgs(args), " "), out)
	}
	return errOut
}

// redactArgs hides the value after -p/--password/--body in a failure message.
func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if strings.HasPrefix(out[i], "--password=") {
			out[i] = "--password=<redacted>"
		}
		if i == 0 {
			continue
		}
		switch out[i-1] {
		case "-p", "--password", "--body", "--value":
			out[i] = "<redacted>"
		}
	}
	return out
}

// field walks a decoded JSON value by dot-separated keys.
func field(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func fieldString(v any, path string) string {
	s, _ := field(v, path).(string)
	return s
}

// wantFields fails t unless each path of v holds the wanted value (compared as printed).
func wantFields(t *testing.T, what string, v any, want map[string]any) {
	t.Helper()
	for path, w := range want {
		if got := field(v, path); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", what, path, got, w)
		}
	}
}

// azKnownDefect runs a command Debian's package cannot run and records the row as unsupported
// when it fails with the known defect; anything else (a success included: the package was
// fixed and the row needs real assertions) fails the row.
func azKnownDefect(t *testing.T, c *azCLI, op, marker string, args ...string) {
	t.Helper()
	_, errOut, err := c.run(args...)
	if err == nil || !strings.Contains(errOut, marker) {
		t.Errorf("az %s: want Debian's package to fail with %q, got err %v:\n%s", op, marker, err, errOut)
		recordClientResult("az", op, resultFail)
		return
	}
	recordClientResult("az", op, resultUnsupported)
}

// azCloud is what `strongroom az-config` prints.
type azCloud struct {
	Name        string          `json:"name"`
	CloudConfig json.RawMessage `json:"cloudConfig"`
}

func TestAzureCLI(t *testing.T) {
	bin := azBinary(t)
	start := time.Now()
	srv := testenv.Start(t, nil)
	proxy := startLocalhostProxy(t, srv.Port)
	admin := newAzCLI(t, bin, srv, proxy)
	sub, tenant := srv.Admin.SubscriptionID, srv.Admin.TenantID
	origin := srv.URL
	defer func() { t.Logf("az suite took %s", time.Since(start).Round(time.Second)) }()

	// The cloud registration, as strongroom az-config prints it for this server.
	azConfig := exec.Command(testenv.Binary(t), "az-config", "--server", srv.URL)
	azConfig.Env = admin.env
	out, err := azConfig.Output()
	if err != nil {
		t.Fatalf("strongroom az-config: %v", err)
	}
	var cloud azCloud
	if err := json.Unmarshal(out, &cloud); err != nil || cloud.Name != "Strongroom" {
		t.Fatalf("strongroom az-config printed %q: %v", out, err)
	}
	// applyCloud registers the cloud in another az installation, through az-config --apply.
	applyCloud := func(t *testing.T, c *azCLI) {
		t.Helper()
		cmd := exec.Command(testenv.Binary(t), "az-config", "--server", srv.URL, "--apply")
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("strongroom az-config --apply: %v\n%s", err, out)
		}
		if got := c.tsv(t, "cloud", "show", "--query", "name"); got != "Strongroom" {
			t.Fatalf("active cloud after az-config --apply: %q", got)
		}
	}

	t.Run("cloud register", func(t *testing.T) {
		recordClient(t, "az", "cloud register --cloud-config")
		admin.must(t, "cloud", "register", "--name", cloud.Name, "--cloud-config", string(cloud.CloudConfig))
		got := admin.object(t, "cloud", "show", "--name", "Strongroom")
		wantFields(t, "registered cloud", got, map[string]any{
			"endpoints.resourceManager":           origin + "/",
			"endpoints.activeDirectory":           origin + "/adfs",
			"endpoints.activeDirectoryResourceId": "https://management.core.windows.net/",
			"endpoints.microsoftGraphResourceId":  origin + "/",
			"suffixes.keyvaultDns":                ".vault.localhost:" + strconv.Itoa(srv.Port),
			"isActive":                            false,
		})
	})
	t.Run("cloud set", func(t *testing.T) {
		recordClient(t, "az", "cloud set")
		admin.must(t, "cloud", "set", "--name", "Strongroom")
		if got := admin.object(t, "cloud", "show"); got["name"] != "Strongroom" || got["isActive"] != true {
			t.Fatalf("active cloud: %v", got)
		}
	})
	t.Run("login --service-principal", func(t *testing.T) {
		recordClient(t, "az", "login --service-principal")
		subs := admin.list(t, "login", "--service-principal", "-u", srv.Admin.ClientID, "--password="+srv.Admin.ClientSecret, "--tenant", tenant)
		if len(subs) != 1 {
			t.Fatalf("login listed %d subscriptions: %v", len(subs), subs)
		}
		wantFields(t, "subscription", subs[0], map[string]any{"id": sub, "tenantId": tenant, "state": "Enabled",
			"isDefault": true, "user.name": srv.Admin.ClientID, "user.type": "servicePrincipal"})
	})

	var adminOID string
	t.Run("ad sp show", func(t *testing.T) {
		recordClient(t, "az", "ad sp show")
		sp := admin.object(t, "ad", "sp", "show", "--id", srv.Admin.ClientID)
		adminOID = fieldString(sp, "id")
		if fieldString(sp, "appId") != srv.Admin.ClientID || adminOID == "" {
			t.Fatalf("ad sp show: %v", sp)
		}
	})

	t.Run("group create", func(t *testing.T) {
		recordClient(t, "az", "group create")
		rg := admin.object(t, "group", "create", "--name", "myResourceGroup", "--location", "eastus")
		wantFields(t, "group", rg, map[string]any{"id": "/subscriptions/" + sub + "/resourceGroups/myResourceGroup",
			"name": "myResourceGroup", "location": "eastus", "properties.provisioningState": "Succeeded"})
	})

	vaultID := "/subscriptions/" + sub + "/resourceGroups/myResourceGroup/providers/Microsoft.KeyVault/vaults/myKeyVault"
	t.Run("keyvault create", func(t *testing.T) {
		recordClient(t, "az", "keyvault create")
		// The quick start's command, without --no-self-perms: az looks the caller up in Graph
		// and gives it an access policy.
		kv := admin.object(t, "keyvault", "create", "--name", "myKeyVault", "--resource-group", "myResourceGroup", "--location", "eastus")
		wantFields(t, "vault", kv, map[string]any{"id": vaultID, "name": "myKeyVault", "location": "eastus",
			"type": "Microsoft.KeyVault/vaults", "properties.vaultUri": srv.VaultURL("myKeyVault"),
			"properties.tenantId": tenant, "properties.sku.name": "standard", "properties.sku.family": "A",
			"properties.enableSoftDelete": true, "properties.softDeleteRetentionInDays": 90,
			"properties.provisioningState": "Succeeded", "properties.networkAcls.defaultAction": "Allow"})
		pols, _ := field(kv, "properties.accessPolicies").([]any)
		if len(pols) != 1 || fieldString(pols[0], "objectId") != adminOID || fmt.Sprint(field(pols[0], "permissions.secrets")) != "[all]" {
			t.Fatalf("the creator's access policy: %v (want object id %s)", pols, adminOID)
		}
		stderr := admin.fails(t, "keyvault", "create", "--name", "myKeyVault", "--resource-group", "myResourceGroup", "--location", "eastus")
		if !strings.Contains(stderr, "already exists") {
			t.Fatalf("creating it again: %s", stderr)
		}
	})
	t.Run("keyvault show", func(t *testing.T) {
		recordClient(t, "az", "keyvault show")
		kv := admin.object(t, "keyvault", "show", "--name", "myKeyVault")
		wantFields(t, "vault", kv, map[string]any{"id": vaultID, "resourceGroup": "myResourceGroup",
			// az 2.45 names no permission model, and its api-version predates 2026-02-01: Key
			// Vault makes an access-policy vault, where the creator's own policy decides.
			"properties.vaultUri": srv.VaultURL("myKeyVault"), "properties.enableRbacAuthorization": false})
	})
	t.Run("keyvault list", func(t *testing.T) {
		recordClient(t, "az", "keyvault list")
		l := admin.list(t, "keyvault", "list")
		if len(l) != 1 || fieldString(l[0], "id") != vaultID || fieldString(l[0], "resourceGroup") != "myResourceGroup" {
			t.Fatalf("keyvault list: %v", l)
		}
	})
	t.Run("keyvault update", func(t *testing.T) {
		recordClient(t, "az", "keyvault update")
		kv := admin.object(t, "keyvault", "update", "--name", "myKeyVault", "--enabled-for-deployment", "true", "--set", "tags.env=test")
		wantFields(t, "updated vault", kv, map[string]any{"properties.enabledForDeployment": true, "tags.env": "test"})
		if got := admin.tsv(t, "keyvault", "show", "--name", "myKeyVault", "--query", "[properties.enabledForDeployment, tags.env]"); got != "true\ntest" {
			t.Fatalf("read back: %q", got)
		}
		// Key Vault refuses to change the retention of a vault.
		if stderr := admin.fails(t, "keyvault", "update", "--name", "myKeyVault", "--retention-days", "30"); !strings.Contains(stderr, "softDeleteRetentionInDays") {
			t.Fatalf("changing the retention: %s", stderr)
		}
	})

	// The secrets API through az rest (Debian's `keyvault secret` cannot load, below).
	vault := strings.TrimSuffix(srv.VaultURL("myKeyVault"), "/")
	kvRest := func(t *testing.T, c *azCLI, method, path, body string, query ...string) map[string]any {
		t.Helper()
		args := []string{"rest", "--method", method, "--url", vault + path + "?api-version=7.4", "--resource", "https://vault.azure.net"}
		if body != "" {
			args = append(args, "--body", body)
		}
		out := c.must(t, append(args, "-o", "json")...)
		var m map[string]any
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("az rest %s %s: %v\n%s", method, path, err, out)
			}
		}
		return m
	}
	var version, backup string
	t.Run("rest PUT /secrets/{name}", func(t *testing.T) {
		recordClient(t, "az", "rest PUT /secrets/{name}")
		s := kvRest(t, admin, "put", "/secrets/mySecret", `{"value":"mySecretValue","contentType":"text/plain","tags":{"app":"quickstart"}}`)
		id := fieldString(s, "id")
		version = id[strings.LastIndex(id, "/")+1:]
		wantFields(t, "set", s, map[string]any{"value": "mySecretValue", "contentType": "text/plain", "tags.app": "quickstart",
			"attributes.enabled": true, "attributes.recoveryLevel": "Recoverable+Purgeable"})
		if !strings.HasPrefix(id, vault+"/secrets/mySecret/") || len(version) != 32 {
			t.Fatalf("secret id %q", id)
		}
		if s2 := kvRest(t, admin, "put", "/secrets/mySecret", `{"value":"second value"}`); fieldString(s2, "value") != "second value" {
			t.Fatalf("second version: %v", s2)
		}
	})
	t.Run("rest GET /secrets/{name}", func(t *testing.T) {
		recordClient(t, "az", "rest GET /secrets/{name}")
		if got := admin.tsv(t, "rest", "--method", "get", "--url", vault+"/secrets/mySecret?api-version=7.4",
			"--resource", "https://vault.azure.net", "--query", "value"); got != "second value" {
			t.Fatalf("latest value %q", got)
		}
	})
	t.Run("rest GET /secrets/{name}/{version}", func(t *testing.T) {
		recordClient(t, "az", "rest GET /secrets/{name}/{version}")
		s := kvRest(t, admin, "get", "/secrets/mySecret/"+version, "")
		wantFields(t, "version", s, map[string]any{"value": "mySecretValue", "id": vault + "/secrets/mySecret/" + version})
	})
	t.Run("rest GET /secrets", func(t *testing.T) {
		recordClient(t, "az", "rest GET /secrets")
		l := kvRest(t, admin, "get", "/secrets", "")
		items, _ := l["value"].([]any)
		if len(items) != 1 || fieldString(items[0], "id") != vault+"/secrets/mySecret" || field(items[0], "value") != nil {
			t.Fatalf("list: %v", l)
		}
	})
	t.Run("rest GET /secrets/{name}/versions", func(t *testing.T) {
		recordClient(t, "az", "rest GET /secrets/{name}/versions")
		l := kvRest(t, admin, "get", "/secrets/mySecret/versions", "")
		if items, _ := l["value"].([]any); len(items) != 2 {
			t.Fatalf("versions: %v", l)
		}
	})
	t.Run("rest PATCH /secrets/{name}/{version}", func(t *testing.T) {
		recordClient(t, "az", "rest PATCH /secrets/{name}/{version}")
		s := kvRest(t, admin, "patch", "/secrets/mySecret/"+version, `{"contentType":"application/json","attributes":{"enabled":false},"tags":{"app":"patched"}}`)
		wantFields(t, "patched", s, map[string]any{"contentType": "application/json", "attributes.enabled": false, "tags.app": "patched"})
		if _, ok := s["value"]; ok {
			t.Fatalf("an update answered the value: %v", s)
		}
		if stderr := admin.fails(t, "rest", "--method", "get", "--url", vault+"/secrets/mySecret/"+version+"?api-version=7.4",
			"--resource", "https://vault.azure.net"); !strings.Contains(stderr, "Forbidden") || !strings.Contains(stderr, "disabled") {
			t.Fatalf("reading a disabled version: %s", stderr)
		}
	})
	t.Run("rest POST /secrets/{name}/backup", func(t *testing.T) {
		recordClient(t, "az", "rest POST /secrets/{name}/backup")
		backup = fieldString(kvRest(t, admin, "post", "/secrets/mySecret/backup", ""), "value")
		if len(backup) < 100 {
			t.Fatalf("backup blob %q", backup)
		}
	})
	t.Run("rest DELETE /secrets/{name}", func(t *testing.T) {
		recordClient(t, "az", "rest DELETE /secrets/{name}")
		d := kvRest(t, admin, "delete", "/secrets/mySecret", "")
		wantFields(t, "deleted", d, map[string]any{"recoveryId": vault + "/deletedsecrets/mySecret", "value": nil})
		if field(d, "deletedDate") == nil || field(d, "scheduledPurgeDate") == nil {
			t.Fatalf("deleted secret: %v", d)
		}
	})
	t.Run("rest GET /deletedsecrets/{name}", func(t *testing.T) {
		recordClient(t, "az", "rest GET /deletedsecrets/{name}")
		d := kvRest(t, admin, "get", "/deletedsecrets/mySecret", "")
		wantFields(t, "deleted", d, map[string]any{"recoveryId": vault + "/deletedsecrets/mySecret"})
		if !strings.HasPrefix(fieldString(d, "id"), vault+"/secrets/mySecret/") || field(d, "value") != nil {
			t.Fatalf("deleted secret: %v", d)
		}
	})
	t.Run("rest GET /deletedsecrets", func(t *testing.T) {
		recordClient(t, "az", "rest GET /deletedsecrets")
		l := kvRest(t, admin, "get", "/deletedsecrets", "")
		items, _ := l["value"].([]any)
		if len(items) != 1 || fieldString(items[0], "recoveryId") != vault+"/deletedsecrets/mySecret" {
			t.Fatalf("deleted list: %v", l)
		}
	})
	t.Run("rest POST /deletedsecrets/{name}/recover", func(t *testing.T) {
		recordClient(t, "az", "rest POST /deletedsecrets/{name}/recover")
		r := kvRest(t, admin, "post", "/deletedsecrets/mySecret/recover", "")
		if !strings.HasPrefix(fieldString(r, "id"), vault+"/secrets/mySecret/") {
			t.Fatalf("recovered: %v", r)
		}
		if got := fieldString(kvRest(t, admin, "get", "/secrets/mySecret", ""), "value"); got != "second value" {
			t.Fatalf("value after recovery %q", got)
		}
	})
	t.Run("rest DELETE /deletedsecrets/{name}", func(t *testing.T) {
		recordClient(t, "az", "rest DELETE /deletedsecrets/{name}")
		kvRest(t, admin, "delete", "/secrets/mySecret", "")
		kvRest(t, admin, "delete", "/deletedsecrets/mySecret", "")
		if stderr := admin.fails(t, "rest", "--method", "get", "--url", vault+"/deletedsecrets/mySecret?api-version=7.4",
			"--resource", "https://vault.azure.net"); !strings.Contains(stderr, "Not Found") && !strings.Contains(stderr, "SecretNotFound") {
			t.Fatalf("a purged secret: %s", stderr)
		}
	})
	t.Run("rest POST /secrets/restore", func(t *testing.T) {
		recordClient(t, "az", "rest POST /secrets/restore")
		r := kvRest(t, admin, "post", "/secrets/restore", `{"value":"`+backup+`"}`)
		if !strings.HasPrefix(fieldString(r, "id"), vault+"/secrets/mySecret/") {
			t.Fatalf("restored: %v", r)
		}
		if got := fieldString(kvRest(t, admin, "get", "/secrets/mySecret", ""), "value"); got != "second value" {
			t.Fatalf("value after restore %q", got)
		}
		if l := kvRest(t, admin, "get", "/secrets/mySecret/versions", ""); len(l["value"].([]any)) != 2 {
			t.Fatalf("versions after restore: %v", l)
		}
	})

	// Debian's keyvault secret commands fail while loading, before any request.
	for _, c := range [][]string{
		{"set", "--value", "v"}, {"show"}, {"list"}, {"list-versions"}, {"set-attributes", "--enabled", "false"},
		{"delete"}, {"show-deleted"}, {"list-deleted"}, {"recover"}, {"purge"}, {"backup", "--file", "/dev/null"}, {"restore", "--file", "/dev/null"},
	} {
		op := "keyvault secret " + c[0]
		t.Run(op, func(t *testing.T) {
			args := append([]string{"keyvault", "secret"}, c...)
			switch c[0] {
			case "list", "list-deleted", "restore":
				args = append(args, "--vault-name", "myKeyVault")
			default:
				args = append(args, "--vault-name", "myKeyVault", "--name", "mySecret")
			}
			azKnownDefect(t, admin, op, azMissingKeyVaultSDK, args...)
		})
	}

	// assignRole assigns a role by ARM's REST API (Debian's `az role assignment create` cannot
	// run, below) and returns the assignment's id.
	assignRole := func(t *testing.T, scope, roleID, principalID, principalType string) string {
		t.Helper()
		id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		body := `{"properties":{"roleDefinitionId":"/subscriptions/` + sub + `/providers/Microsoft.Authorization/roleDefinitions/` + roleID +
			`","principalId":"` + principalID + `","principalType":"` + principalType + `"}}`
		got := admin.object(t, "rest", "--method", "put", "--url", id+"?api-version=2022-04-01", "--body", body)
		if !strings.EqualFold(fieldString(got, "id"), id) || fieldString(got, "properties.principalId") != principalID {
			t.Fatalf("role assignment: %v", got)
		}
		return id
	}

	var appID, appPassword, appOID string
	t.Run("ad sp create-for-rbac", func(t *testing.T) {
		recordClient(t, "az", "ad sp create-for-rbac")
		sp := admin.object(t, "ad", "sp", "create-for-rbac", "--name", "billing-api")
		appID, appPassword = fieldString(sp, "appId"), fieldString(sp, "password")
		wantFields(t, "create-for-rbac", sp, map[string]any{"displayName": "billing-api", "tenant": tenant})
		if appID == "" || len(appPassword) < 32 {
			t.Fatalf("create-for-rbac: appId %q, password of %d characters", appID, len(appPassword))
		}
		appOID = admin.tsv(t, "ad", "sp", "show", "--id", appID, "--query", "id")
		// Run again, it patches the application it finds by name and answers a new password.
		again := admin.object(t, "ad", "sp", "create-for-rbac", "--name", "billing-api")
		if fieldString(again, "appId") != appID || fieldString(again, "password") == appPassword {
			t.Fatalf("create-for-rbac again: appId %q (want %s), the password unchanged: %v", fieldString(again, "appId"), appID, fieldString(again, "password") == appPassword)
		}
		appPassword = fieldString(again, "password")
	})
	t.Run("keyvault set-policy", func(t *testing.T) {
		recordClient(t, "az", "keyvault set-policy")
		kv := admin.object(t, "keyvault", "create", "--name", "polkv", "--resource-group", "myResourceGroup", "--location", "eastus",
			"--enable-rbac-authorization", "false")
		if field(kv, "properties.enableRbacAuthorization") != false {
			t.Fatalf("vault with access policies: %v", kv)
		}
		got := admin.object(t, "keyvault", "set-policy", "--name", "polkv", "--spn", appID, "--secret-permissions", "get", "list")
		var entry any
		for _, p := range field(got, "properties.accessPolicies").([]any) {
			if fieldString(p, "objectId") == appOID {
				entry = p
			}
		}
		if perms := fmt.Sprint(field(entry, "permissions.secrets")); perms != "[get list]" && perms != "[list get]" {
			t.Fatalf("billing-api's entry: %v", entry)
		}
		// The entry decides on the data plane: billing-api may read, not write.
		polkv := strings.TrimSuffix(srv.VaultURL("polkv"), "/")
		admin.must(t, "rest", "--method", "put", "--url", polkv+"/secrets/db?api-version=7.4", "--resource", "https://vault.azure.net", "--body", `{"value":"s3cret-by-policy"}`)
		app := newAzCLI(t, bin, srv, proxy)
		applyCloud(t, app)
		app.must(t, "login", "--service-principal", "-u", appID, "--password="+appPassword, "--tenant", tenant)
		if got := app.tsv(t, "rest", "--method", "get", "--url", polkv+"/secrets/db?api-version=7.4", "--resource", "https://vault.azure.net", "--query", "value"); got != "s3cret-by-policy" {
			t.Fatalf("billing-api read %q", got)
		}
		if stderr := app.fails(t, "rest", "--method", "put", "--url", polkv+"/secrets/db?api-version=7.4", "--resource", "https://vault.azure.net", "--body", `{"value":"x"}`); !strings.Contains(stderr, "Forbidden") {
			t.Fatalf("billing-api wrote: %s", stderr)
		}
	})

	t.Run("ad group create", func(t *testing.T) {
		recordClient(t, "az", "ad group create")
		g := admin.object(t, "ad", "group", "create", "--display-name", "devs", "--mail-nickname", "devs")
		wantFields(t, "group", g, map[string]any{"displayName": "devs", "mailNickname": "devs", "securityEnabled": true, "mailEnabled": false})
		// az looks for the group by name and nickname first, so running it again answers the same.
		if again := admin.tsv(t, "ad", "group", "create", "--display-name", "devs", "--mail-nickname", "devs", "--query", "id"); again != fieldString(g, "id") {
			t.Fatalf("ad group create again: %s, want %s", again, fieldString(g, "id"))
		}
	})

	t.Run("role assignment create", func(t *testing.T) {
		azKnownDefect(t, admin, "role assignment create", azAuthorizationSDKMismatch,
			"role", "assignment", "create", "--assignee", appID, "--role", "Key Vault Secrets User", "--scope", vaultID)
	})
	t.Run("role assignment list", func(t *testing.T) {
		azKnownDefect(t, admin, "role assignment list", azAuthorizationSDKMismatch, "role", "assignment", "list", "--scope", vaultID)
	})
	t.Run("role assignment delete", func(t *testing.T) {
		recordClient(t, "az", "role assignment delete --ids")
		id := assignRole(t, vaultID, rbac.KeyVaultReaderID, appOID, "ServicePrincipal")
		admin.must(t, "role", "assignment", "delete", "--ids", id)
		if stderr := admin.fails(t, "rest", "--method", "get", "--url", id+"?api-version=2022-04-01"); !strings.Contains(stderr, "RoleAssignmentNotFound") {
			t.Fatalf("the assignment after delete: %s", stderr)
		}
	})

	var miPrincipal, miID string
	t.Run("identity create", func(t *testing.T) {
		recordClient(t, "az", "identity create")
		mi := admin.object(t, "identity", "create", "--name", "billing-worker", "--resource-group", "myResourceGroup")
		miPrincipal, miID = fieldString(mi, "principalId"), fieldString(mi, "id")
		wantFields(t, "identity", mi, map[string]any{"name": "billing-worker", "tenantId": tenant, "resourceGroup": "myResourceGroup",
			"type": "Microsoft.ManagedIdentity/userAssignedIdentities",
			"id":   "/subscriptions/" + sub + "/resourceGroups/myResourceGroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/billing-worker"})
		if miPrincipal == "" || fieldString(mi, "clientId") == "" {
			t.Fatalf("identity: %v", mi)
		}
	})
	t.Run("login --identity", func(t *testing.T) {
		recordClient(t, "az", "login --identity")
		// The identity may read myKeyVault's secrets (an access policy: the vault uses them); a
		// host is registered with it, and the
		// agent runs there, serving MSI_ENDPOINT.
		admin.must(t, "keyvault", "set-policy", "--name", "myKeyVault", "--object-id", miPrincipal, "--secret-permissions", "get")
		hosts := "/subscriptions/" + sub + "/providers/Strongroom.Identity/hosts"
		token := admin.tsv(t, "rest", "--method", "put", "--url", hosts+"/web-1?api-version=2024-01-01", "--query", "properties.registrationToken")
		admin.must(t, "rest", "--method", "post", "--url", hosts+"/web-1/assignIdentity?api-version=2024-01-01", "--body", `{"identityId":"`+miID+`"}`)
		agent := startAgent(t, srv, token)
		mi := newAzCLI(t, bin, srv, proxy, "MSI_ENDPOINT="+agent.msi)
		applyCloud(t, mi)
		subs := mi.list(t, "login", "--identity")
		if len(subs) != 1 {
			t.Fatalf("login --identity: %v", subs)
		}
		wantFields(t, "subscription", subs[0], map[string]any{"id": sub, "tenantId": tenant,
			"user.type": "servicePrincipal", "user.assignedIdentityInfo": "MSI"})
		if got := mi.tsv(t, "rest", "--method", "get", "--url", vault+"/secrets/mySecret?api-version=7.4",
			"--resource", "https://vault.azure.net", "--query", "value"); got != "second value" {
			t.Fatalf("the identity read %q", got)
		}
	})

	upn, password := "alice@contoso.com", "Corr3ct-Horse-Battery-"+uuid.NewString()[:8]
	var aliceOID string
	t.Run("ad user create", func(t *testing.T) {
		recordClient(t, "az", "ad user create")
		u := admin.object(t, "ad", "user", "create", "--display-name", "Alice", "--user-principal-name", upn, "--password", password)
		aliceOID = fieldString(u, "id")
		wantFields(t, "user", u, map[string]any{"userPrincipalName": upn, "displayName": "Alice", "accountEnabled": true})
		if aliceOID == "" {
			t.Fatalf("user: %v", u)
		}
	})
	t.Run("login -u -p", func(t *testing.T) {
		recordClient(t, "az", "login -u -p")
		// Contributor on the group: vaults may be created there, no data action is granted.
		assignRole(t, "/subscriptions/"+sub+"/resourceGroups/myResourceGroup", rbac.ContributorID, aliceOID, "User")
		alice := newAzCLI(t, bin, srv, proxy)
		applyCloud(t, alice)
		// No --tenant: az finds the tenant by GET /tenants (a service principal needs it).
		subs := alice.list(t, "login", "-u", upn, "--password="+password)
		if len(subs) != 1 {
			t.Fatalf("login -u -p: %v", subs)
		}
		wantFields(t, "subscription", subs[0], map[string]any{"id": sub, "tenantId": tenant, "user.name": upn, "user.type": "user"})
		// Her keyvault create: az finds her through Graph's /me, and her access policy alone
		// lets her write a secret.
		kv := alice.object(t, "keyvault", "create", "--name", "alicekv", "--resource-group", "myResourceGroup", "--location", "eastus",
			"--enable-rbac-authorization", "false")
		pols, _ := field(kv, "properties.accessPolicies").([]any)
		if len(pols) != 1 || fieldString(pols[0], "objectId") != aliceOID {
			t.Fatalf("alice's access policy: %v (want %s)", pols, aliceOID)
		}
		alicekv := strings.TrimSuffix(srv.VaultURL("alicekv"), "/")
		alice.must(t, "rest", "--method", "put", "--url", alicekv+"/secrets/hers?api-version=7.4", "--resource", "https://vault.azure.net", "--body", `{"value":"alice-value"}`)
		if got := alice.tsv(t, "rest", "--method", "get", "--url", alicekv+"/secrets/hers?api-version=7.4", "--resource", "https://vault.azure.net", "--query", "value"); got != "alice-value" {
			t.Fatalf("alice read %q", got)
		}
	})

	// Soft delete of a vault: delete, list the deleted, recover, delete again, purge.
	t.Run("keyvault delete", func(t *testing.T) {
		recordClient(t, "az", "keyvault delete")
		admin.must(t, "keyvault", "create", "--name", "delkv", "--resource-group", "myResourceGroup", "--location", "eastus")
		admin.must(t, "keyvault", "delete", "--name", "delkv")
		if stderr := admin.fails(t, "keyvault", "show", "--name", "delkv"); !strings.Contains(stderr, "not found") && !strings.Contains(stderr, "NotFound") {
			t.Fatalf("show after delete: %s", stderr)
		}
	})
	t.Run("keyvault list-deleted", func(t *testing.T) {
		recordClient(t, "az", "keyvault list-deleted")
		l := admin.list(t, "keyvault", "list-deleted")
		if len(l) != 1 || fieldString(l[0], "name") != "delkv" ||
			fieldString(l[0], "properties.vaultId") != "/subscriptions/"+sub+"/resourceGroups/myResourceGroup/providers/Microsoft.KeyVault/vaults/delkv" {
			t.Fatalf("list-deleted: %v", l)
		}
	})
	t.Run("keyvault recover", func(t *testing.T) {
		recordClient(t, "az", "keyvault recover")
		kv := admin.object(t, "keyvault", "recover", "--name", "delkv")
		wantFields(t, "recovered", kv, map[string]any{"name": "delkv", "properties.provisioningState": "Succeeded"})
		if got := admin.tsv(t, "keyvault", "show", "--name", "delkv", "--query", "properties.vaultUri"); got != srv.VaultURL("delkv") {
			t.Fatalf("show after recover: %q", got)
		}
	})
	t.Run("keyvault purge", func(t *testing.T) {
		recordClient(t, "az", "keyvault purge")
		admin.must(t, "keyvault", "delete", "--name", "delkv")
		admin.must(t, "keyvault", "purge", "--name", "delkv")
		if l := admin.list(t, "keyvault", "list-deleted"); len(l) != 0 {
			t.Fatalf("list-deleted after purge: %v", l)
		}
		// The name is free again.
		if got := admin.tsv(t, "keyvault", "create", "--name", "delkv", "--resource-group", "myResourceGroup", "--location", "eastus", "--query", "name"); got != "delkv" {
			t.Fatalf("create after purge: %q", got)
		}
	})
}
