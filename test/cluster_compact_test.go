package test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// A hard delete (soft delete off) and a purge in a 3-node cluster are each followed (after
// compact_delay) by a compaction of every node's state-machine file: the destroyed secret's
// storage keys leave every node's fsm.db, each node counts one compaction per destroy, and live
// secrets still read from every node's own copy.
func TestCluster_PurgeCompactsEveryNodesStateMachine(t *testing.T) {
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("compact_delay: 300ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: []string{"--config", cfg}})
	follower := c.Follower()
	fe := clusterEnv(t, c, follower)
	kv := fe.createVault(t, "rg-compact", "kv-compact", nil)
	const doomed = "compactcanary-doomed"
	canary := []byte("COMPACTCANARY-DOOMED") // storage keys hold the upper-cased name
	for i := range 3 {
		if _, err := kv.SetSecret(ctx, doomed, azsecrets.SetSecretParameters{Value: to.Ptr("v" + string(rune('0'+i)))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.SetSecret(ctx, "kept", azsecrets.SetSecretParameters{Value: to.Ptr("live")}, nil); err != nil {
		t.Fatal(err)
	}
	fsm := func(n *testenv.Server) []byte {
		b, err := os.ReadFile(filepath.Join(n.DataDir, "raft", "fsm.db"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The check can see the name: it is in every node's file while the secret lives.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		all := true
		for _, n := range c.Nodes {
			all = all && bytes.Contains(fsm(n), canary)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live secret's key is not in every node's state-machine file")
		}
	}
	tok, err := fe.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	// erased waits until no node's file holds canary and each has compacted compactions times.
	erased := func(what string, canary []byte, compactions float64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			done := true
			for _, n := range c.Nodes {
				_, body := scrape(t, fe.hc, n.URL, tok.Token)
				done = done && !bytes.Contains(fsm(n), canary) &&
					metricValue(body, `strongroom_store_compactions_total{result="success"}`) >= compactions &&
					metricValue(body, `strongroom_store_compactions_total{result="failure"}`) == 0
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				for _, n := range c.Nodes {
					_, body := scrape(t, fe.hc, n.URL, tok.Token)
					t.Logf("%s: canary in fsm.db %v\n%s", n.URL, bytes.Contains(fsm(n), canary), grepLines(body, "strongroom_store_compactions"))
				}
				t.Fatalf("the %s secret's keys are still in a node's state-machine file, or a node did not compact", what)
			}
		}
	}

	// A hard delete erases as a purge does.
	hard := fe.createVault(t, "rg-compact", "kv-hard", &armkeyvault.VaultProperties{EnableSoftDelete: to.Ptr(false)})
	hardCanary := []byte("HARDDELETE-DOOMED")
	if _, err := hard.SetSecret(ctx, "harddelete-doomed", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		all := true
		for _, n := range c.Nodes {
			all = all && bytes.Contains(fsm(n), hardCanary)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hard-delete secret's key is not in every node's state-machine file")
		}
	}
	if _, err := hard.DeleteSecret(ctx, "harddelete-doomed", nil); err != nil {
		t.Fatal(err)
	}
	erased("hard-deleted", hardCanary, 1)

	if _, err := kv.DeleteSecret(ctx, doomed, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PurgeDeletedSecret(ctx, doomed, nil); err != nil {
		t.Fatal(err)
	}
	purged := time.Now()
	erased("purged", canary, 2)
	took := time.Since(purged)
	for _, n := range c.Nodes {
		g, err := staleSecrets(t, n, fe, "kv-compact").GetSecret(ctx, "kept", "", nil)
		if err != nil || *g.Value != "live" {
			t.Fatalf("%s after compaction: %v", n.URL, err)
		}
	}
	if _, err := kv.SetSecret(ctx, "after", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
		t.Fatalf("write after compaction: %v", err)
	}
	noDataRace(t, c.Nodes...)
	t.Logf("every node's state-machine file compacted %v after the purge (compact_delay 300ms)", took.Round(time.Millisecond))
}
