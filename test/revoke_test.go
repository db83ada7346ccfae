package test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/testenv"
)

// armScope is the management plane's scope, as az asks for it.
const armScope = "https://management.core.windows.net//.default"

// clientToken gets an ARM token for clientID/secret from the cluster's token endpoint.
func clientToken(t *testing.T, c *testenv.Cluster, hc *http.Client, clientID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {armScope}}
	resp, err := hc.PostForm(c.PublicURL+"/"+c.Admin.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.AccessToken == "" {
		t.Fatalf("token for %s: HTTP %d", clientID, resp.StatusCode)
	}
	return body.AccessToken
}

// keyringStatus calls GET /sys/keyring on node with tok, on the default (leader) path or
// the stale path (served and authenticated by node itself), and returns the status.
func keyringStatus(t *testing.T, hc *http.Client, node *testenv.Server, tok string, stale bool) int {
	t.Helper()
	req, err := http.NewRequest("GET", node.URL+"/sys/keyring", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if stale {
		req.Header.Set("X-Strongroom-Consistency", "stale")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// allApplied waits until every node's state machine holds what the leader has applied (the
// operator call that just returned was applied there). It synchronizes; it asserts nothing.
func allApplied(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	leader := c.Leader(30 * time.Second)
	for _, n := range c.Nodes {
		waitApplied(t, n, leader)
	}
}

// wantEveryNode checks tok's status on every node, on both paths.
func wantEveryNode(t *testing.T, c *testenv.Cluster, hc *http.Client, what, tok string, want int) {
	t.Helper()
	for i, n := range c.Nodes {
		for _, stale := range []bool{false, true} {
			if got := keyringStatus(t, hc, n, tok, stale); got != want {
				t.Errorf("%s on node %s (stale=%v): HTTP %d, want %d", what, c.IDs[i], stale, got, want)
			}
		}
	}
}

// On a 3-node cluster, disabling a principal and removing a client secret (through the real
// `strongroom operator principal` commands) makes every node refuse the affected tokens with 401
// on the next request once it has applied the write, on the leader path and on each node's own
// (stale) path, while the tokens of the principal's other secret keep working.
func TestCluster_Revocation_EveryNode(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	hc := c.HTTPClient()
	n1 := c.Nodes[0]
	cfgDir := t.TempDir()
	if _, errOut, err := cli(t, cfgDir, "login", "--server", c.PublicURL, "--ca-file", filepath.Join(n1.DataDir, "tls", "ca.pem"),
		"--service-principal", "--username", c.Admin.ClientID, "--password", c.Admin.ClientSecret, "--tenant", c.Admin.TenantID); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut)
	}
	op := func(args ...string) map[string]any {
		t.Helper()
		out, errOut, err := cli(t, cfgDir, append([]string{"operator"}, args...)...)
		if err != nil {
			t.Fatalf("operator %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		var m map[string]any
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("operator %s output: %v", strings.Join(args, " "), err)
			}
		}
		return m
	}

	// A principal without a role: its token authenticates (403) until it is disabled (401).
	created := op("principal", "create", "--display-name", "revokee")
	appID, _ := created["appId"].(string)
	secret, _ := created["clientSecret"].(string)
	revokee := clientToken(t, c, hc, appID, secret)
	allApplied(t, c)
	wantEveryNode(t, c, hc, "revokee before disable", revokee, http.StatusForbidden)
	op("principal", "disable", appID)
	allApplied(t, c)
	wantEveryNode(t, c, hc, "revokee after disable", revokee, http.StatusUnauthorized)

	// The admin gets a second secret; removing it revokes exactly the tokens it minted.
	rotated := op("principal", "secret", "rotate", c.Admin.ClientID)
	keyID, _ := rotated["keyId"].(string)
	secret2, _ := rotated["clientSecret"].(string)
	tok1 := clientToken(t, c, hc, c.Admin.ClientID, c.Admin.ClientSecret)
	tok2 := clientToken(t, c, hc, c.Admin.ClientID, secret2)
	allApplied(t, c)
	wantEveryNode(t, c, hc, "second secret's token", tok2, http.StatusOK)
	op("principal", "secret", "remove", c.Admin.ClientID, "--key-id", keyID)
	allApplied(t, c)
	wantEveryNode(t, c, hc, "removed secret's token", tok2, http.StatusUnauthorized)
	wantEveryNode(t, c, hc, "first secret's token", tok1, http.StatusOK)

	// The bootstrap admin cannot be disabled.
	if _, _, err := cli(t, cfgDir, "operator", "principal", "disable", c.Admin.ClientID); err == nil {
		t.Fatal("disabling the bootstrap admin succeeded")
	}
}
