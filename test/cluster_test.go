package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// staleRead adds the stale-read header to every request of a client.
type staleRead struct{}

func (staleRead) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("X-Strongroom-Consistency", "stale")
	return req.Next()
}

// clusterEnv is an env on one node whose credential uses the cluster's public URL as authority.
func clusterEnv(t *testing.T, c *testenv.Cluster, node *testenv.Server) *env {
	t.Helper()
	hc := c.HTTPClient()
	cred := c.Credential(node, hc)
	groups, err := armresources.NewResourceGroupsClient(node.Admin.SubscriptionID, cred, node.ARMOptions(hc))
	if err != nil {
		t.Fatal(err)
	}
	vaults, err := armkeyvault.NewVaultsClient(node.Admin.SubscriptionID, cred, node.ARMOptions(hc))
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: node, hc: hc, cred: cred, groups: groups, vaults: vaults, publicURL: c.PublicURL}
}

func staleSecrets(t *testing.T, s *testenv.Server, e *env, vault string) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(s.VaultURL(vault), e.cred, &azsecrets.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: e.hc, Retry: policy.RetryOptions{MaxRetries: -1}, PerCallPolicies: []policy.Policy{staleRead{}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A 3-node cluster formed with join tokens: a write through a follower is read on the leader
// (linearizable, default path) and, once replicated, from the follower's own copy (stale path).
func TestCluster_WriteThroughFollower_ReadOnLeader(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	peers := c.Peers()
	if len(peers) != 3 {
		t.Fatalf("list-peers = %+v, want 3 members", peers)
	}
	leader, follower := c.Leader(10*time.Second), c.Follower()
	fe := clusterEnv(t, c, follower)
	kv := fe.createVault(t, "rg-cluster", "kv-cluster", nil)
	ctx := context.Background()
	set, err := kv.SetSecret(ctx, "through-follower", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil)
	if err != nil {
		t.Fatalf("set through follower: %v", err)
	}
	le := clusterEnv(t, c, leader)
	got, err := le.srv.Secrets("kv-cluster", le.cred, le.hc).GetSecret(ctx, "through-follower", "", nil)
	if err != nil || *got.Value != "v1" || got.ID.Version() != set.ID.Version() {
		t.Fatalf("get on leader = %v (set %v), %v", *got.ID, *set.ID, err)
	}
	// The stale path is served by the follower itself and converges to the same value.
	stale := staleSecrets(t, follower, fe, "kv-cluster")
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, err := stale.GetSecret(ctx, "through-follower", "", nil)
		if err == nil && *g.Value == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale read on follower did not converge: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A join token works once.
	if st, ok := follower.Status(); !ok || st.Role != "follower" || st.Leader == "" {
		t.Fatalf("follower status = %+v", st)
	}
}

// SIGKILL of the leader under write load: writes resume within the election timeout plus two
// seconds, and every acknowledged write is readable afterwards.
func TestCluster_LeaderKill_WritesResume(t *testing.T) {
	const election = time.Second
	c := testenv.StartCluster(t, &testenv.ClusterOptions{ElectionTimeout: election})
	leader := c.Leader(10 * time.Second)
	var survivors []*testenv.Server
	for _, s := range c.Nodes {
		if s != leader {
			survivors = append(survivors, s)
		}
	}
	e := clusterEnv(t, c, survivors[0])
	e.createVault(t, "rg-kill", "kv-kill", nil)
	ctx := context.Background()

	type ack struct{ name, value string }
	var (
		mu       sync.Mutex
		acked    []ack
		lastOK   atomic.Int64 // unix nanos of the latest acknowledged write
		killedAt atomic.Int64
		resumed  atomic.Int64 // first ack after the kill
		failures atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clients []*azsecrets.Client
	for w := range 4 {
		s := survivors[w%len(survivors)]
		we := clusterEnv(t, c, s)
		kv := we.srv.Secrets("kv-kill", we.cred, we.hc)
		clients = append(clients, kv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name, val := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("value-%d-%d", w, i)
				started := time.Now().UnixNano()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := kv.SetSecret(cctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(val)}, nil)
				cancel()
				if err != nil {
					failures.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				now := time.Now().UnixNano()
				lastOK.Store(now)
				if k := killedAt.Load(); k != 0 && started > k {
					resumed.CompareAndSwap(0, now)
				}
				mu.Lock()
				acked = append(acked, ack{name, val})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond) // load running
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	if before == 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("no write acknowledged before the kill (%d failures)", failures.Load())
	}
	killedAt.Store(time.Now().UnixNano())
	leader.Kill()
	limit := election + 2*time.Second
	deadline := time.Now().Add(limit + 5*time.Second) // bounded wait; the limit is checked below
	for resumed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // some writes on the new leader
	close(stop)
	wg.Wait()
	if resumed.Load() == 0 {
		t.Fatalf("no write acknowledged within %v of the leader kill", limit+5*time.Second)
	}
	gap := time.Duration(resumed.Load() - killedAt.Load())
	t.Logf("writes acknowledged: %d before kill, %d total; failed attempts %d; first ack after SIGKILL %v (limit %v)",
		before, len(acked), failures.Load(), gap.Round(time.Millisecond), limit)
	if gap > limit {
		t.Fatalf("writes resumed %v after the leader kill, want within %v", gap, limit)
	}
	// Read through a survivor with a credential whose data-plane token is cached (the token
	// endpoint's public URL may have been the killed node).
	kv := clients[0]
	for _, a := range acked {
		g, err := kv.GetSecret(ctx, a.name, "", nil)
		if isUnavailable(err) { // the survivor may still be settling on the new leader
			time.Sleep(500 * time.Millisecond)
			g, err = kv.GetSecret(ctx, a.name, "", nil)
		}
		if err != nil || *g.Value != a.value {
			t.Fatalf("acknowledged write %s lost: %v", a.name, err)
		}
	}
}

// A follower stopped while the leader takes many writes and compacts its log catches up through
// a snapshot when it comes back.
func TestCluster_RestartedNode_CatchesUpThroughSnapshot(t *testing.T) {
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: []string{"--snapshot-threshold", "64", "--trailing-logs", "16", "--snapshot-interval", "200ms"}})
	leader := c.Leader(10 * time.Second)
	le := clusterEnv(t, c, leader)
	kv := le.createVault(t, "rg-snap", "kv-snap", nil)
	victim := c.Follower()
	before, _ := victim.Status()
	victim.Stop()
	ctx := context.Background()
	const writes = 300
	for i := range writes {
		if _, err := kv.SetSecret(ctx, fmt.Sprintf("s%03d", i), azsecrets.SetSecretParameters{Value: to.Ptr(fmt.Sprint(i))}, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	lst, _ := leader.Status()
	for wait := time.Now().Add(10 * time.Second); lst.LastSnapshotIndex <= before.AppliedIndex+16; lst, _ = leader.Status() {
		if time.Now().After(wait) {
			t.Fatalf("leader took no snapshot past the victim's index: %+v", lst)
		}
		time.Sleep(50 * time.Millisecond)
	}
	victim.StartAgain()
	deadline := time.Now().Add(30 * time.Second)
	var st testenv.NodeStatus
	for {
		var ok bool
		st, ok = victim.Status()
		if ok && st.AppliedIndex >= lst.AppliedIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node at %+v, leader at %d", st, lst.AppliedIndex)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("victim stopped at applied index %d; leader at %d after %d writes; victim restarted with snapshot index %d",
		before.AppliedIndex, lst.AppliedIndex, writes, st.LastSnapshotIndex)
	if st.LastSnapshotIndex <= before.AppliedIndex {
		t.Fatalf("restarted node's snapshot index %d is not past where it stopped (%d): it did not install a snapshot", st.LastSnapshotIndex, before.AppliedIndex)
	}
	ve := clusterEnv(t, c, victim)
	stale := staleSecrets(t, victim, ve, "kv-snap")
	for i := range writes {
		g, err := stale.GetSecret(ctx, fmt.Sprintf("s%03d", i), "", nil)
		if err != nil || *g.Value != fmt.Sprint(i) {
			t.Fatalf("restarted node's own copy misses s%03d: %v", i, err)
		}
	}
}

func isUnavailable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "503") || errors.Is(err, context.DeadlineExceeded))
}
