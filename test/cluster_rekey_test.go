package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/seal/sealtest"
	"github.com/strongroom/strongroom/internal/testenv"
)

// sysPost calls an authorized /sys route through node and returns the status and body.
func sysPost(t *testing.T, c *testenv.Cluster, node *testenv.Server, path string, body any) (int, []byte) {
	t.Helper()
	hc := c.HTTPClient()
	tok, err := c.Credential(node, hc).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatalf("token through %s: %v", node.URL, err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", node.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s through %s: %v", path, node.URL, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// everyNodeWorks writes a secret through every node, reads every secret written so far through
// every node (linearizable, and stale: from the node's own copy and keyring), and rotates the
// keyring through every node. It returns the names written.
func everyNodeWorks(t *testing.T, c *testenv.Cluster, round string, written []string) []string {
	t.Helper()
	ctx := context.Background()
	for i, n := range c.Nodes {
		e := clusterEnv(t, c, n)
		name := fmt.Sprintf("%s-n%d", round, i+1)
		if _, err := n.Secrets("kv-rekey", e.cred, e.hc).SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("value-" + name)}, nil); err != nil {
			t.Fatalf("%s: write through %s: %v", round, c.IDs[i], err)
		}
		written = append(written, name)
	}
	for i, n := range c.Nodes {
		e := clusterEnv(t, c, n)
		kv, stale := n.Secrets("kv-rekey", e.cred, e.hc), staleSecrets(t, n, e, "kv-rekey")
		for _, name := range written {
			if got, err := kv.GetSecret(ctx, name, "", nil); err != nil || *got.Value != "value-"+name {
				t.Fatalf("%s: read %s through %s: %v", round, name, c.IDs[i], err)
			}
			var err error
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				var got azsecrets.GetSecretResponse
				if got, err = stale.GetSecret(ctx, name, "", nil); err == nil && *got.Value == "value-"+name {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: stale read of %s on %s never succeeded: %v", round, name, c.IDs[i], err)
				}
			}
		}
		if code, body := sysPost(t, c, n, "/sys/keyring/rotate", nil); code != 200 {
			t.Fatalf("%s: keyring rotate through %s: %d %s", round, c.IDs[i], code, body)
		}
	}
	return written
}

// stepDown moves leadership away from the current leader and returns the new one.
func stepDown(t *testing.T, c *testenv.Cluster) *testenv.Server {
	t.Helper()
	old := c.Leader(30 * time.Second)
	c.Operator(old, "raft", "step-down")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l := c.Leader(30 * time.Second); l != old {
			return l
		}
	}
	t.Fatal("leadership did not move")
	return nil
}

// sameKeyFiles asserts every node has one seal.key, all equal, none equal to before, and no
// leftover <key>.next.
func sameKeyFiles(t *testing.T, c *testenv.Cluster, before []byte) {
	t.Helper()
	var first []byte
	for i, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.DataDir, "seal.key"))
		if err != nil {
			t.Fatalf("%s: %v", c.IDs[i], err)
		}
		if bytes.Equal(b, before) {
			t.Fatalf("%s still has the old key file", c.IDs[i])
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("%s has another key file than %s", c.IDs[i], c.IDs[0])
		}
		if _, err := os.Stat(filepath.Join(n.DataDir, "seal.key.next")); err == nil {
			t.Fatalf("%s kept seal.key.next", c.IDs[i])
		}
	}
}

// TestCluster_Rekey brings every member of a 3-node cluster onto the new root key: after a
// rekey (file and Shamir seals) and a seal migration (file to Shamir), issued through a
// follower, every node writes, reads (its own copy included) and rotates, before and after a
// leader change and a restart of all nodes.
func TestCluster_Rekey(t *testing.T) {
	cases := []struct {
		name string
		opts func(t *testing.T) *testenv.ClusterOptions
		path string
		body map[string]any
	}{
		{"file", nil, "/sys/rekey", nil},
		{"shamir", func(*testing.T) *testenv.ClusterOptions { return &testenv.ClusterOptions{Shamir: true} },
			"/sys/rekey", map[string]any{"secret_shares": 4, "secret_threshold": 3}},
		{"migrate-file-to-shamir", nil, "/sys/seal/migrate", map[string]any{"to": "shamir", "secret_shares": 3, "secret_threshold": 2}},
		{"pkcs11-shared-hsm", sharedHSM, "/sys/rekey", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts *testenv.ClusterOptions
			if tc.opts != nil {
				opts = tc.opts(t)
			}
			c := testenv.StartCluster(t, opts)
			e := clusterEnv(t, c, c.Nodes[0])
			e.createVault(t, "rg-rekey", "kv-rekey", nil)
			written := everyNodeWorks(t, c, "before", nil)
			oldKey, _ := os.ReadFile(filepath.Join(c.Nodes[0].DataDir, "seal.key"))

			code, body := sysPost(t, c, c.Follower(), tc.path, tc.body)
			if code != 200 {
				t.Fatalf("%s: %d %s", tc.path, code, body)
			}
			var out struct {
				Keys     []string `json:"keys_base64"`
				Warning  string   `json:"warning"`
				KeyLabel string   `json:"keyLabel"`
			}
			if err := json.Unmarshal(body, &out); err != nil || out.Warning != "" {
				t.Fatalf("%s answer: %v %s", tc.path, err, body)
			}
			switch tc.name {
			case "shamir":
				if len(out.Keys) != 4 {
					t.Fatalf("rekey answer: %s", body)
				}
				c.Keys = out.Keys
			case "migrate-file-to-shamir":
				if len(out.Keys) != 3 {
					t.Fatalf("migrate answer: %s", body)
				}
				c.UseShamir(out.Keys)
			case "pkcs11-shared-hsm":
				if !strings.HasPrefix(out.KeyLabel, "strongroom-root-wrap-") {
					t.Fatalf("rekey answer: %s", body)
				}
			}
			written = everyNodeWorks(t, c, "after-rekey", written)
			switch tc.name {
			case "file":
				sameKeyFiles(t, c, oldKey)
			case "migrate-file-to-shamir":
				for i, n := range c.Nodes {
					for _, f := range []string{"seal.key", "seal.key.next", "admin.json"} {
						if _, err := os.Stat(filepath.Join(n.DataDir, f)); err == nil {
							t.Fatalf("%s kept %s after migrating to shamir", c.IDs[i], f)
						}
					}
				}
			}

			stepDown(t, c)
			written = everyNodeWorks(t, c, "after-step-down", written)

			noRootKeyMismatch(t, c)

			c.RestartAll()
			everyNodeWorks(t, c, "after-restart", written)
			if tc.name == "file" {
				sameKeyFiles(t, c, oldKey)
			}
			noRootKeyMismatch(t, c)
		})
	}
}

func noRootKeyMismatch(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	for i, n := range c.Nodes {
		if strings.Contains(n.Stderr.String(), "root key does not match") {
			t.Fatalf("%s logged a root key mismatch:\n%s", c.IDs[i], n.Stderr.String())
		}
	}
}

// sharedHSM configures every node with the pkcs11 seal on one SoftHSM2 token (one HSM that all
// nodes reach).
func sharedHSM(t *testing.T) *testenv.ClusterOptions {
	conf, _ := sealtest.NewToken(t, "strongroom-cluster", "1234")
	cfg := writeConfig(t, "seal:\n  type: pkcs11\n  pkcs11:\n    module: "+sealtest.SoftHSMModule+"\n    token_label: strongroom-cluster\n    pin_env: TEST_HSM_PIN\n")
	return &testenv.ClusterOptions{Extra: []string{"--config", cfg}, Env: []string{"SOFTHSM2_CONF=" + conf, "TEST_HSM_PIN=1234"}}
}

// TestCluster_Rekey_RefusedWhileAVoterIsDown: a voter that cannot stage the new root key stops
// the rekey before anything is committed; the answer names it, every node keeps its key file,
// and once it is back the cluster works and rekeys.
func TestCluster_Rekey_RefusedWhileAVoterIsDown(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	e := clusterEnv(t, c, c.Nodes[0])
	e.createVault(t, "rg-rekey", "kv-rekey", nil)
	written := everyNodeWorks(t, c, "before", nil)
	oldKey, _ := os.ReadFile(filepath.Join(c.Nodes[0].DataDir, "seal.key"))
	leader := c.Leader(30 * time.Second)
	var down int
	for i, n := range c.Nodes {
		if n != leader {
			down = i
			break
		}
	}
	c.Nodes[down].Stop()

	code, body := sysPost(t, c, leader, "/sys/rekey", nil)
	if code != 400 || !strings.Contains(string(body), "voter "+c.IDs[down]) || !strings.Contains(string(body), "nothing was changed") {
		t.Fatalf("rekey with %s down: %d %s", c.IDs[down], code, body)
	}
	for i, n := range c.Nodes {
		if b, _ := os.ReadFile(filepath.Join(n.DataDir, "seal.key")); !bytes.Equal(b, oldKey) {
			t.Fatalf("%s's key file changed after a refused rekey", c.IDs[i])
		}
		if _, err := os.Stat(filepath.Join(n.DataDir, "seal.key.next")); err == nil {
			t.Fatalf("%s kept seal.key.next after a refused rekey", c.IDs[i])
		}
	}
	c.Nodes[down].StartAgain()
	written = everyNodeWorks(t, c, "after-refusal", written)
	if code, body := sysPost(t, c, c.Nodes[down], "/sys/rekey", nil); code != 200 {
		t.Fatalf("rekey with every node up: %d %s", code, body)
	}
	everyNodeWorks(t, c, "after-rekey", written)
	sameKeyFiles(t, c, oldKey)
}
