package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// `operator raft snapshot save` on a follower while writes continue, then `restore` into a fresh
// running cluster made with the same root key: without a restart, every node serves the
// snapshot's deployment; every secret and version acknowledged before the save began is there
// with its value, writes racing the save are either there intact or absent, and damaged files
// are refused without changing anything.
func TestCluster_SnapshotSaveUnderLoad_RestoreIntoFreshCluster(t *testing.T) {
	src := testenv.StartCluster(t, nil)
	follower := src.Follower()
	fe := clusterEnv(t, src, follower)
	kv := fe.createVault(t, "rg-snapshot", "kv-snapshot", nil)
	ctx := context.Background()

	// 30 secrets with 2 versions each: name -> version -> value.
	want := map[string]map[string]string{}
	for i := range 30 {
		name := fmt.Sprintf("sec-%02d", i)
		want[name] = map[string]string{}
		for v := range 2 {
			val := fmt.Sprintf("value-%d-%d", i, v)
			r, err := kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(val)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want[name][r.ID.Version()] = val
		}
	}

	// Writers keep going through both followers' and the leader's API during the save.
	var (
		mu      sync.Mutex
		racing  = map[string]string{} // acknowledged during the save: name -> value
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		started atomic.Int64
	)
	for w, node := range src.Nodes {
		we := clusterEnv(t, src, node)
		wkv := we.srv.Secrets("kv-snapshot", we.cred, we.hc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name, val := fmt.Sprintf("load-%d-%d", w, i), fmt.Sprintf("load-value-%d-%d", w, i)
				if _, err := wkv.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(val)}, nil); err == nil {
					started.Add(1)
					mu.Lock()
					racing[name] = val
					mu.Unlock()
				}
			}
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); started.Load() < 20; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no load writes acknowledged")
		}
	}
	mu.Lock()
	ackedBefore := map[string]string{} // acknowledged before the save began: must be in it
	for k, v := range racing {
		ackedBefore[k] = v
	}
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "cluster.snap")
	saveStart := time.Now()
	src.Operator(follower, "raft", "snapshot", "save", file)
	saveTook := time.Since(saveStart)
	time.Sleep(200 * time.Millisecond) // writes after the save
	close(stop)
	wg.Wait()
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(file)
	for _, v := range []string{"value-1-1", "load-value-0-1"} {
		if strings.Contains(string(raw), v) {
			t.Fatalf("snapshot file holds %q in plaintext", v)
		}
	}

	// A fresh cluster with the same root key (the source's seal key file).
	dst := testenv.StartCluster(t, &testenv.ClusterOptions{SealKeyFile: filepath.Join(src.Nodes[0].DataDir, "seal.key")})
	dnode := dst.Follower()

	damaged := []struct {
		name  string
		bytes func([]byte) []byte
	}{
		{"one byte flipped in the data", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"one byte flipped in the header", func(b []byte) []byte { b[20] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }},
		{"last chunk dropped", func(b []byte) []byte { return b[:len(b)-2000] }},
		{"bytes appended", func(b []byte) []byte { return append(b, 1, 2, 3, 4) }},
		{"not a snapshot", func([]byte) []byte { return []byte("hello") }},
	}
	for _, d := range damaged {
		t.Run("refused/"+d.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.snap")
			if err := os.WriteFile(bad, d.bytes(append([]byte(nil), raw...)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := dst.TryOperator(dnode, "raft", "snapshot", "restore", bad)
			if err == nil || !strings.Contains(stderr, "snapshot refused") {
				t.Fatalf("damaged snapshot restored: err=%v stderr=%s", err, stderr)
			}
		})
	}
	// The refused files changed nothing: the fresh cluster still has its own admin and no vault.
	de := clusterEnv(t, dst, dnode)
	if _, err := de.srv.Secrets("kv-snapshot", de.cred, de.hc).GetSecret(ctx, "sec-00", "", nil); err == nil {
		t.Fatal("fresh cluster serves a source secret after refused restores")
	}

	restoreStart := time.Now()
	out := dst.Operator(dnode, "raft", "snapshot", "restore", file)
	restoreTook := time.Since(restoreStart)
	// No restart: every node rebuilds its identities, vault cache and handler from the restored
	// store once it installed it (the leader at once, followers from the leader). The source's
	// admin's token verifies on every node, which serves the restored secrets from its own copy
	// (stale reads: no forwarding), within a bounded wait.
	hc := dst.HTTPClient()
	cred := dst.CredentialAs(src.Nodes[0].Admin, hc)
	for _, n := range dst.Nodes {
		nkv := staleSecrets(t, n, &env{hc: hc, cred: cred}, "kv-snapshot")
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			g, err := nkv.GetSecret(ctx, "sec-00", "", nil)
			if err == nil && *g.Value == "value-0-1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not serve the restored deployment without a restart: %v", n.URL, err)
			}
		}
	}
	// The fresh cluster's own admin is gone with its store.
	if _, err := dst.CredentialAs(dnode.Admin, hc).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}}); err == nil {
		t.Fatal("the replaced deployment's admin still gets tokens")
	}
	rkv := dnode.Secrets("kv-snapshot", cred, hc)
	versions := 0
	for name, vers := range want {
		for ver, val := range vers {
			g, err := rkv.GetSecret(ctx, name, ver, nil)
			if err != nil || *g.Value != val {
				t.Fatalf("restored %s/%s: %v", name, ver, err)
			}
			versions++
		}
		pager := rkv.NewListSecretPropertiesVersionsPager(name, nil)
		n := 0
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != len(vers) {
			t.Fatalf("restored %s has %d versions, want %d", name, n, len(vers))
		}
	}
	present := 0
	for name, val := range racing {
		g, err := rkv.GetSecret(ctx, name, "", nil)
		if err != nil {
			if _, must := ackedBefore[name]; must {
				t.Fatalf("write %s acknowledged before the save is missing: %v", name, err)
			}
			continue
		}
		if *g.Value != val {
			t.Fatalf("restored %s = %q, want %q", name, *g.Value, val)
		}
		present++
	}
	// The restored cluster takes writes.
	if _, err := rkv.SetSecret(ctx, "after-restore", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
	noDataRace(t, append(append([]*testenv.Server(nil), src.Nodes...), dst.Nodes...)...)
	t.Logf("snapshot %d bytes saved in %v under load; restored in %v (%s); verified %d versions of %d secrets; load writes: %d acknowledged before the save (all present), %d acknowledged in total, %d in the snapshot",
		info.Size(), saveTook.Round(time.Millisecond), restoreTook.Round(time.Millisecond), strings.TrimSpace(string(out)), versions, len(want), len(ackedBefore), len(racing), present)
}
