package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// staleTransport sends every request with X-Strongroom-Consistency: stale, so a follower
// answers a read from its own copy instead of forwarding it to the leader.
type staleTransport struct{ base http.RoundTripper }

func (s staleTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Strongroom-Consistency", "stale")
	return s.base.RoundTrip(r)
}

// TestCluster_AlertSettingsReplicate: a honeytoken marked and a rule set through the leader
// reach every node's memory (KeysApplied), so a follower that reads the decoy from its own
// copy alerts, from that node, exactly once, and lists the rule as set through the API.
func TestCluster_AlertSettingsReplicate(t *testing.T) {
	cfg, hook, _ := alertsConfig(t)
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: []string{"--config", cfg}, Env: []string{"STRONGROOM_DEV=1"}})
	noRaces(t, c.Nodes...)
	leader := c.Leader(10 * time.Second)
	le := clusterEnv(t, c, leader)
	ctx := context.Background()
	kv := le.createVault(t, "rg-calerts", "kv-calerts", rbacVault())
	canary := "cluster-alert-canary-value"
	if _, err := kv.SetSecret(ctx, "decoy", azsecrets.SetSecretParameters{Value: to.Ptr(canary)}, nil); err != nil {
		t.Fatal(err)
	}
	tok := le.adminARMToken(t)
	htPath := "/subscriptions/" + leader.Admin.SubscriptionID + "/resourceGroups/rg-calerts/providers/Microsoft.KeyVault/vaults/kv-calerts/providers/Strongroom.Monitor/honeytokens"
	if status, body := le.monitorCall(t, tok, "PUT", htPath+"/decoy", "{}"); status != http.StatusOK {
		t.Fatalf("marking the honeytoken: %d %s", status, body)
	}
	if status, body := le.monitorCall(t, tok, "PUT", "/providers/Strongroom.Monitor/alertRules/bruteForce", `{"properties":{"threshold":2}}`); status != http.StatusCreated {
		t.Fatalf("setting a rule: %d %s", status, body)
	}
	stale := &http.Client{Transport: staleTransport{base: le.hc.Transport}}
	var followers []string
	for i, n := range c.Nodes {
		if n == leader {
			continue
		}
		fe := clusterEnv(t, c, n)
		// The node's own memory, once it applied both writes.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, hts := fe.monitorCallVia(t, stale, tok, "GET", htPath, "")
			_, rule := fe.monitorCallVia(t, stale, tok, "GET", "/providers/Strongroom.Monitor/alertRules/bruteForce", "")
			if strings.Contains(hts, `"DECOY"`) && strings.Contains(rule, `"source":"api"`) && strings.Contains(rule, `"threshold":2`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not apply the alert settings: %s %s", n.URL, hts, rule)
			}
		}
		got, err := staleSecrets(t, n, fe, "kv-calerts").GetSecret(ctx, "decoy", "", nil)
		if err != nil || *got.Value != canary {
			t.Fatalf("reading the decoy on %s: %v", n.URL, err)
		}
		followers = append(followers, c.IDs[i])
	}
	as := hook.waitAlerts(t, map[string]int{"honeytoken": 2})
	nodes := map[string]bool{}
	for _, a := range as {
		nodes[a.Where.Node] = true
		if a.What.Secret != "decoy" || a.What.Vault != "kv-calerts" {
			t.Fatalf("alert %+v", a)
		}
	}
	for _, id := range followers {
		if !nodes[id] {
			t.Fatalf("no alert from follower %s: %+v", id, as)
		}
	}
	if strings.Contains(hook.raw(), canary) {
		t.Fatal("an alert holds the secret's value")
	}
}
