package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// hostIdentity makes a user-assigned identity with Key Vault Secrets User on the vault, a host
// with the identity assigned, and returns the identity's client id and the host's one-time
// registration token.
func (e *env) hostIdentity(t *testing.T, rg, vault, host string) (clientID, registration string) {
	t.Helper()
	ctx := context.Background()
	ic, err := armmsi.NewUserAssignedIdentitiesClient(e.srv.Admin.SubscriptionID, e.cred, e.srv.ARMOptions(e.hc))
	if err != nil {
		t.Fatal(err)
	}
	created, err := ic.CreateOrUpdate(ctx, rg, host+"-app", armmsi.Identity{Location: to.Ptr("eastus")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mi := created.Identity
	if _, err := e.rbacClients(t, e.cred).assign(ctx, e.vaultScope(rg, vault), rbac.KeyVaultSecretsUserID, *mi.Properties.PrincipalID); err != nil {
		t.Fatalf("assigning Key Vault Secrets User: %v", err)
	}
	hosts := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/providers/Strongroom.Identity/hosts"
	reg := e.armCall(t, "PUT", hosts+"/"+host+"?api-version=2024-01-01", "", http.StatusCreated)
	token, _ := reg["properties"].(map[string]any)["registrationToken"].(string)
	if token == "" {
		t.Fatalf("no registration token: %v", reg)
	}
	e.armCall(t, "POST", hosts+"/"+host+"/assignIdentity?api-version=2024-01-01", `{"identityId":"`+*mi.ID+`"}`, http.StatusOK)
	return *mi.Properties.ClientID, token
}

// runAgent starts `strongroom agent` against server with extra flags and returns the variables
// it printed.
func runAgent(t *testing.T, server, caFile, registration string, extra ...string) map[string]string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	args := append([]string{"agent", "--listen", "127.0.0.1:0", "--server", server, "--ca-file", caFile,
		"--data-dir", dir, "--registration-token", registration}, extra...)
	cmd := exec.Command(testenv.Binary(t), args...)
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
	vars := map[string]string{"DATA_DIR": dir}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := []string{"IDENTITY_ENDPOINT"}
	if strings.Contains(strings.Join(extra, " "), "--cache-listen") {
		want = append(want, "STRONGROOM_AGENT_CACHE", "STRONGROOM_AGENT_CACHE_CA")
	}
	deadline := time.After(30 * time.Second)
	for {
		missing := false
		for _, k := range want {
			if vars[k] == "" {
				missing = true
			}
		}
		if !missing {
			break
		}
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the agent exited: %s", stderr.String())
			}
			if k, v, ok := strings.Cut(l, "="); ok {
				vars[k] = v
			}
		case <-deadline:
			t.Fatalf("the agent did not start: %s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	// The agent prints where IDENTITY_HEADER is, never its value.
	if _, printed := vars["IDENTITY_HEADER"]; printed {
		t.Fatal("the agent printed IDENTITY_HEADER's value")
	}
	vars["IDENTITY_HEADER"] = agentEnvValue(t, dir, "IDENTITY_HEADER")
	return vars
}

// agentEnvValue reads one variable from the agent.env an agent wrote in dir.
func agentEnvValue(t *testing.T, dir, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "agent.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok && v != "" {
			return v
		}
	}
	t.Fatalf("agent.env has no %s", name)
	return ""
}

// cutProxy forwards TCP to a target until cut; while cut it drops every connection.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// cacheClient is an application's secrets client pointed at the agent's cache, with the
// official ManagedIdentityCredential from the agent's endpoint variables.
func cacheClient(t *testing.T, vars map[string]string, vault string) *azsecrets.Client {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", vars["IDENTITY_ENDPOINT"])
	t.Setenv("IDENTITY_HEADER", vars["IDENTITY_HEADER"])
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(vars["STRONGROOM_AGENT_CACHE_CA"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	d := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}}}
	url := strings.Replace(vars["STRONGROOM_AGENT_CACHE"], "{vault}", vault, 1)
	c, err := azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{
		Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cachedGet reads a secret through the cache and returns its value and x-strongroom-cache.
func cachedGet(c *azsecrets.Client, name string) (value, cache string, err error) {
	var raw *http.Response
	ctx := policy.WithCaptureResponse(context.Background(), &raw)
	resp, err := c.GetSecret(ctx, name, "", nil)
	if raw != nil {
		cache = raw.Header.Get("x-strongroom-cache")
	}
	if err != nil {
		return "", cache, err
	}
	return *resp.Value, cache, nil
}

// TestAgentCache_Outage: an application with the official SDK and ManagedIdentityCredential
// reads through the agent's cache; while the server cannot be reached (the network cut, then the
// server stopped) the cache serves the last good versions marked stale; a secret deleted, or
// disabled, while the agent could not see it is refused as soon as the server answers again,
// and one deleted while the agent was connected is dropped by the refresh loop alone.
func TestAgentCache_Outage(t *testing.T) {
	recordClient(t, "strongroom agent", "cache serves through an outage, never after delete/disable")
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.createVault(t, "cache-rg", "cache-kv", nil)
	for _, s := range []string{"alpha", "bravo", "charlie", "delta"} {
		if _, err := admin.SetSecret(ctx, s, azsecrets.SetSecretParameters{Value: to.Ptr(s + "-value-1")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, registration := e.hostIdentity(t, "cache-rg", "cache-kv", "web-cache")
	proxy := newCutProxy(t, "127.0.0.1:"+strings.TrimPrefix(e.srv.URL, "https://localhost:"))
	_, proxyPort, _ := net.SplitHostPort(proxy.addr())
	vars := runAgent(t, "https://localhost:"+proxyPort, filepath.Join(e.srv.DataDir, "tls", "ca.pem"), registration,
		"--cache-listen", "127.0.0.1:0", "--cache-refresh", "1s")
	app := cacheClient(t, vars, "cache-kv")

	for _, s := range []string{"alpha", "bravo", "charlie", "delta"} {
		v, cache, err := cachedGet(app, s)
		if err != nil || v != s+"-value-1" || cache != "fresh" {
			t.Fatalf("%s through the cache: %q %q %v", s, v, cache, err)
		}
	}
	// A new version is seen at once while the server answers.
	if _, err := admin.SetSecret(ctx, "alpha", azsecrets.SetSecretParameters{Value: to.Ptr("alpha-value-2")}, nil); err != nil {
		t.Fatal(err)
	}
	if v, _, err := cachedGet(app, "alpha"); err != nil || v != "alpha-value-2" {
		t.Fatalf("alpha after a new version: %q %v", v, err)
	}
	// Deleted while the agent is connected: the refresh loop drops it without any request.
	if _, err := admin.DeleteSecret(ctx, "delta", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	// A version that does not exist is the server's 404 for that version alone: alpha's copy
	// stays. A secret's version list passes through and is not kept.
	if _, err := app.GetSecret(ctx, "alpha", "ffffffffffffffffffffffffffffffff", nil); err == nil {
		t.Fatal("a version that does not exist was served")
	} else {
		wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	}
	if page, err := app.NewListSecretPropertiesVersionsPager("bravo", nil).NextPage(ctx); err != nil || len(page.Value) != 1 {
		t.Fatalf("bravo's versions through the cache: %v", err)
	}

	proxy.setCut(true)
	if _, err := app.NewListSecretPropertiesVersionsPager("bravo", nil).NextPage(ctx); err == nil {
		t.Fatal("bravo's version list was served from the cache while the network is cut")
	}
	for _, s := range []struct{ name, value string }{{"alpha", "alpha-value-2"}, {"bravo", "bravo-value-1"}} {
		v, cache, err := cachedGet(app, s.name)
		if err != nil || v != s.value || cache != "stale" {
			t.Fatalf("%s while the network is cut: %q %q %v", s.name, v, cache, err)
		}
	}
	if v, _, err := cachedGet(app, "delta"); err == nil {
		t.Fatalf("delta, deleted before the outage, was served from the cache: %q", v)
	} else {
		wantStatus(t, err, http.StatusServiceUnavailable, "ServiceUnavailable")
	}
	if _, _, err := cachedGet(app, "never-read"); err == nil {
		t.Fatal("a secret never read was served during the outage")
	}

	// The server stopped too: still served.
	e.srv.Stop()
	if v, cache, err := cachedGet(app, "bravo"); err != nil || v != "bravo-value-1" || cache != "stale" {
		t.Fatalf("bravo while the server is stopped: %q %q %v", v, cache, err)
	}
	e.srv.StartAgain()
	// While the agent still cannot see it: bravo is deleted and charlie disabled.
	if _, err := admin.DeleteSecret(ctx, "bravo", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpdateSecretProperties(ctx, "charlie", "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	if v, cache, err := cachedGet(app, "bravo"); err != nil || v != "bravo-value-1" || cache != "stale" {
		t.Fatalf("bravo while the agent is still cut off: %q %q %v", v, cache, err)
	}

	proxy.setCut(false)
	_, cache, err := cachedGet(app, "bravo")
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	if cache != "fresh" {
		t.Fatalf("the 404 for bravo came from %q, want the server", cache)
	}
	_, _, err = cachedGet(app, "charlie")
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	if v, cache, err := cachedGet(app, "alpha"); err != nil || v != "alpha-value-2" || cache != "fresh" {
		t.Fatalf("alpha after the outage: %q %q %v", v, cache, err)
	}
	// And cut again: the refused secrets stay refused.
	proxy.setCut(true)
	for _, s := range []string{"bravo", "charlie"} {
		if v, _, err := cachedGet(app, s); err == nil {
			t.Fatalf("%s served from the cache after the server refused it: %q", s, v)
		}
	}
	if v, _, err := cachedGet(app, "alpha"); err != nil || v != "alpha-value-2" {
		t.Fatalf("alpha in the second outage: %q %v", v, err)
	}
	proxy.setCut(false)
}

// TestAgentCache_Access: the cache takes only tokens its agent issued, names only vault hosts,
// passes lists and writes through as the application's identity, and keeps its pager on the
// cache.
func TestAgentCache_Access(t *testing.T) {
	recordClient(t, "strongroom agent", "cache access rules, lists and writes pass through")
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.createVault(t, "cache2-rg", "cache2-kv", nil)
	for _, s := range []string{"one", "two", "three"} {
		if _, err := admin.SetSecret(ctx, s, azsecrets.SetSecretParameters{Value: to.Ptr(s)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, registration := e.hostIdentity(t, "cache2-rg", "cache2-kv", "web-cache2")
	vars := runAgent(t, e.srv.URL, filepath.Join(e.srv.DataDir, "tls", "ca.pem"), registration, "--cache-listen", "127.0.0.1:0")
	if fi, err := os.Stat(filepath.Join(vars["DATA_DIR"], "cache-ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache-ca.key: %v", err)
	}
	app := cacheClient(t, vars, "cache2-kv")

	// A list passes through.
	n := 0
	for p := app.NewListSecretPropertiesPager(&azsecrets.ListSecretPropertiesOptions{}); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 3 {
		t.Fatalf("listed %d secrets through the cache", n)
	}
	// Key Vault Secrets User may not write: the server refuses the identity, through the cache.
	_, err := app.SetSecret(ctx, "four", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")

	cacheURL := strings.Replace(vars["STRONGROOM_AGENT_CACHE"], "{vault}", "cache2-kv", 1)
	_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(cacheURL, "https://"), "/"))
	pemBytes, _ := os.ReadFile(vars["STRONGROOM_AGENT_CACHE_CA"])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	raw := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "cache2-kv.vault.localhost"}}}
	adminToken, err := e.cred.GetToken(ctx, policyScopes("https://vault.azure.net/.default"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, token string
		want              int
		wantCode          string
	}{
		{"no token: the challenge", "cache2-kv.vault.localhost:" + port, "", http.StatusUnauthorized, "Unauthorized"},
		{"a token the agent did not issue", "cache2-kv.vault.localhost:" + port, adminToken.Token, http.StatusUnauthorized, "Unauthorized"},
		{"a forged token", "cache2-kv.vault.localhost:" + port, "eyJhbGciOiJub25lIn0.e30.", http.StatusUnauthorized, "Unauthorized"},
		{"a host that is not a vault", "evil.example:" + port, adminToken.Token, http.StatusBadRequest, "BadParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+"/secrets/one?api-version=7.5", nil)
			req.Host = tt.host
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || !strings.Contains(string(body), `"code":"`+tt.wantCode+`"`) || strings.Contains(string(body), `"value":"one"`) {
				t.Fatalf("HTTP %d %s, want %d %s", resp.StatusCode, body, tt.want, tt.wantCode)
			}
			if tt.want == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource="https://vault.localhost:`+port+`"`) {
				t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// With a token the agent issued: a page of one, whose nextLink points at the cache.
	tokReq, _ := http.NewRequest("GET", vars["IDENTITY_ENDPOINT"]+"?api-version=2019-08-01&resource=https://vault.localhost:"+port, nil)
	tokReq.Header.Set("X-IDENTITY-HEADER", vars["IDENTITY_HEADER"])
	tokResp, err := http.DefaultClient.Do(tokReq)
	if err != nil {
		t.Fatal(err)
	}
	var issued struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(tokResp.Body).Decode(&issued)
	tokResp.Body.Close()
	req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+"/secrets?api-version=7.5&maxresults=1", nil)
	req.Host = "cache2-kv.vault.localhost:" + port
	req.Header.Set("Authorization", "Bearer "+issued.AccessToken)
	resp, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Value    []any  `json:"value"`
		NextLink string `json:"nextLink"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(page.Value) != 1 || !strings.HasPrefix(page.NextLink, "https://cache2-kv.vault.localhost:"+port+"/secrets?") {
		t.Fatalf("a page of one through the cache: HTTP %d, %d items, nextLink %q", resp.StatusCode, len(page.Value), page.NextLink)
	}

	var re *azcore.ResponseError
	if _, _, err := cachedGet(app, "missing"); !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("a missing secret: %v", err)
	}
}

// TestCluster_AgentCache: an agent whose server is a follower reads through it; when the leader
// is killed the cache keeps answering (stale while the follower cannot reach a leader, fresh
// again once one is elected), and a secret deleted through the new leader is refused through
// the follower.
func TestCluster_AgentCache(t *testing.T) {
	recordClient(t, "strongroom agent", "cache in a cluster: follower, leader loss")
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	le := clusterEnv(t, c, leader)
	ctx := context.Background()
	admin := le.createVault(t, "rg-ccache", "kv-ccache", nil)
	for _, s := range []string{"keep", "drop"} {
		if _, err := admin.SetSecret(ctx, s, azsecrets.SetSecretParameters{Value: to.Ptr(s + "-v1")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, registration := le.hostIdentity(t, "rg-ccache", "kv-ccache", "web-cluster")
	follower := c.Follower()
	vars := runAgent(t, follower.URL, follower.APICAFile(), registration, "--cache-listen", "127.0.0.1:0", "--cache-refresh", "1s")
	app := cacheClient(t, vars, "kv-ccache")
	for _, s := range []string{"keep", "drop"} {
		if v, _, err := cachedGet(app, s); err != nil || v != s+"-v1" {
			t.Fatalf("%s through a follower: %q %v", s, v, err)
		}
	}

	// The admin's own client through the follower, its token fetched now: the token
	// authority (the cluster's public URL) may be the node about to be killed.
	viaFollower := follower.Secrets("kv-ccache", le.cred, le.hc)
	if _, err := viaFollower.GetSecret(ctx, "keep", "", nil); err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	// Whatever the follower can or cannot do meanwhile, the application keeps its secret.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if v, _, err := cachedGet(app, "keep"); err != nil || v != "keep-v1" {
			t.Fatalf("keep while the leader is gone: %q %v", v, err)
		}
	}
	c.Leader(30 * time.Second)
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err = viaFollower.DeleteSecret(ctx, "drop", nil); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("deleting through the follower under the new leader: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, _, err = cachedGet(app, "drop"); isStatus(err, http.StatusNotFound) {
			break
		}
	}
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	if v, cache, err := cachedGet(app, "keep"); err != nil || v != "keep-v1" || cache != "fresh" {
		t.Fatalf("keep under the new leader: %q %q %v", v, cache, err)
	}
}
