package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// A DR replica (non-voter, its own region) follows a 3-node primary under write load; the whole
// primary is SIGKILLed; `operator dr promote` makes the replica a new single-node cluster. Every
// write acknowledged before the replica's observed replication point is readable, and what was
// acknowledged later is either there or lost as a suffix (never a hole); the loss is measured.
func TestCluster_DRReplicaPromotedAfterPrimaryLoss(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	replica := c.AddNode("dr1", []string{"--non-voter", "--region", "dr-region"})
	leader := c.Leader(10 * time.Second)
	waitApplied(t, replica, leader)
	if st, ok := replica.Status(); !ok || st.Role != "dr-replica" {
		t.Fatalf("replica status = %+v", st)
	}
	le := clusterEnv(t, c, leader)
	le.createVault(t, "rg-dr", "kv-dr", nil)
	ctx := context.Background()

	type write struct {
		name, value    string
		started, acked time.Time
	}
	var (
		mu    sync.Mutex
		acked []write
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 4 {
		we := clusterEnv(t, c, c.Nodes[w%3])
		kv := we.srv.Secrets("kv-dr", we.cred, we.hc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wr := write{name: fmt.Sprintf("w%d-%04d", w, i), value: fmt.Sprintf("v-%d-%d", w, i), started: time.Now()}
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := kv.SetSecret(cctx, wr.name, azsecrets.SetSecretParameters{Value: to.Ptr(wr.value)}, nil)
				cancel()
				if err != nil {
					continue
				}
				wr.acked = time.Now()
				mu.Lock()
				acked = append(acked, wr)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	// An observed replication point: everything acknowledged before the leader's commit index
	// was read is at or below it, and the replica has applied it.
	mu.Lock()
	beforeSync := len(acked)
	mu.Unlock()
	lst, _ := leader.Status()
	waitReplicaAt(t, replica, lst.CommitIndex)
	time.Sleep(time.Second) // more load after the replication point
	killedAt := time.Now()
	for _, s := range c.Nodes[:3] {
		s.Kill()
	}
	close(stop)
	wg.Wait()
	rst, _ := replica.Status()

	// Promote: stop the replica, rewrite its configuration, start it as a voter on its own. The
	// public name moves to the DR site (here: the replica's own URL).
	replica.Stop()
	promoteStart := time.Now()
	var res struct {
		NodeID    string `json:"nodeId"`
		LastIndex uint64 `json:"lastIndex"`
	}
	if err := json.Unmarshal(c.Operator(replica, "dr", "promote"), &res); err != nil || res.NodeID != "dr1" {
		t.Fatalf("dr promote output: %+v, %v", res, err)
	}
	promoteTook := time.Since(promoteStart)
	var extra []string
	for i := 0; i < len(replica.Extra); i++ {
		switch replica.Extra[i] {
		case "--non-voter":
		case "--public-url":
			extra = append(extra, "--public-url", replica.URL)
			i++
		default:
			extra = append(extra, replica.Extra[i])
		}
	}
	replica.Extra = extra
	replica.StartAgain()
	servingAfter := time.Since(promoteStart)
	if st, ok := replica.Status(); !ok || st.Role != "leader" {
		t.Fatalf("promoted replica status = %+v", st)
	}

	hc := c.HTTPClient()
	kv := replica.Secrets("kv-dr", replica.CredentialFor(hc, replica.Admin.ClientID, replica.Admin.ClientSecret), hc)
	mu.Lock()
	defer mu.Unlock()
	present := map[string]bool{}
	var lastPresentStart time.Time
	for i, wr := range acked {
		g, err := kv.GetSecret(ctx, wr.name, "", nil)
		if err != nil {
			if i < beforeSync {
				t.Fatalf("write %s acknowledged before the replication point is missing: %v", wr.name, err)
			}
			continue
		}
		if *g.Value != wr.value {
			t.Fatalf("%s = %q, want %q", wr.name, *g.Value, wr.value)
		}
		present[wr.name] = true
		if wr.started.After(lastPresentStart) {
			lastPresentStart = wr.started
		}
	}
	// No hole: a write acknowledged before the newest replicated write was even sent is there.
	var lost []write
	for _, wr := range acked {
		if present[wr.name] {
			continue
		}
		if wr.acked.Before(lastPresentStart) {
			t.Fatalf("write %s (acknowledged %v before a replicated write started) is missing", wr.name, lastPresentStart.Sub(wr.acked))
		}
		lost = append(lost, wr)
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].acked.Before(lost[j].acked) })
	window := time.Duration(0)
	if len(lost) > 0 {
		window = killedAt.Sub(lost[0].acked)
	}
	if _, err := kv.SetSecret(ctx, "after-promotion", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
		t.Fatalf("write on the promoted replica: %v", err)
	}
	t.Logf("acknowledged writes: %d (%d before the replication point); present after promotion: %d; lost: %d (data-loss window %v before the primary's loss); replica applied index at loss %d, promoted at %d; promote took %v, serving %v after it began",
		len(acked), beforeSync, len(present), len(lost), window.Round(time.Millisecond), rst.AppliedIndex, res.LastIndex, promoteTook.Round(time.Millisecond), servingAfter.Round(time.Millisecond))
}

// waitReplicaAt waits (up to 10 s) until node has applied idx.
func waitReplicaAt(t *testing.T, node *testenv.Server, idx uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, ok := node.Status(); ok && st.AppliedIndex >= idx {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not reach index %d within 10s", idx)
		}
	}
}
