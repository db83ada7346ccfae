package test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/anishathalye/porcupine"

	"github.com/strongroom/strongroom/internal/testenv"
)

// kvInput is one client operation on a secret: a read of the latest value, or a write.
type kvInput struct {
	Key   string
	Write bool
	Value string
}

// kvOutput is what a read returned ("" with Found false: no such secret).
type kvOutput struct {
	Value string
	Found bool
}

// secretsModel is a register per secret name: reads return the last written value.
var secretsModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return kvOutput{} },
	Step: func(state, input, output any) (bool, any) {
		in, st := input.(kvInput), state.(kvOutput)
		if in.Write {
			return true, kvOutput{Value: in.Value, Found: true}
		}
		return output.(kvOutput) == st, st
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.Write {
			return fmt.Sprintf("set(%s, %s)", in.Key, in.Value)
		}
		out := output.(kvOutput)
		return fmt.Sprintf("get(%s) -> %q found=%v", in.Key, out.Value, out.Found)
	},
}

// The linearizability check of the cluster under partitions: clients on all three nodes read and
// write a few secrets through the default (linearizable) path while first a follower and then
// the leader are cut off from the other nodes (both directions, through per-node proxies). The
// recorded history must be linearizable: no read returns a stale value, no acknowledged write is
// lost. Writes whose outcome the client could not learn (timeouts, 5xx) count as possibly
// applied at any time after their call.
func TestCluster_Partition_HistoryIsLinearizable(t *testing.T) {
	const election = time.Second
	part := testenv.NewPartitioner(t)
	c := testenv.StartCluster(t, &testenv.ClusterOptions{ElectionTimeout: election, Partition: part})
	e := clusterEnv(t, c, c.Nodes[0])
	e.createVault(t, "rg-part", "kv-part", nil)
	ctx := context.Background()

	// Two clients per node, each with its own connection, no retries, and a short deadline so
	// requests to a cut-off node end instead of hanging.
	type client struct {
		id   int
		node int
		kv   *azsecrets.Client
	}
	var clients []client
	for i := range 6 {
		node := i % len(c.Nodes)
		we := clusterEnv(t, c, c.Nodes[node])
		kv, err := azsecrets.NewClient(c.Nodes[node].VaultURL("kv-part"), we.cred, &azsecrets.ClientOptions{
			ClientOptions: policy.ClientOptions{Transport: we.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Warm up (token and connection) while the cluster is whole.
		if _, err := kv.SetSecret(ctx, fmt.Sprintf("warm-%d", i), azsecrets.SetSecretParameters{Value: to.Ptr("w")}, nil); err != nil {
			t.Fatalf("client %d warm-up: %v", i, err)
		}
		clients = append(clients, client{id: i, node: node, kv: kv})
	}

	keys := []string{"reg-a", "reg-b", "reg-c", "reg-d", "reg-e", "reg-f"}
	start := time.Now()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		// per phase and node: operations that succeeded and that failed
		okOps, failedOps = map[string]int{}, map[string]int{}
		phase            = "whole"
	)
	record := func(cl client, in kvInput, call int64, out kvOutput, err error) {
		mu.Lock()
		defer mu.Unlock()
		tag := fmt.Sprintf("%s/n%d", phase, cl.node+1)
		ret := time.Since(start).Nanoseconds()
		if err != nil {
			failedOps[tag]++
			if !in.Write {
				return // a failed read has no effect and returned nothing
			}
			ret = math.MaxInt64 // a write with an unknown outcome may take effect at any later time
		} else {
			okOps[tag]++
		}
		history = append(history, porcupine.Operation{ClientId: cl.id, Input: in, Call: call, Output: out, Return: ret})
	}
	do := func(cl client, in kvInput) {
		call := time.Since(start).Nanoseconds()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var out kvOutput
		var err error
		if in.Write {
			_, err = cl.kv.SetSecret(cctx, in.Key, azsecrets.SetSecretParameters{Value: to.Ptr(in.Value)}, nil)
		} else {
			var resp azsecrets.GetSecretResponse
			resp, err = cl.kv.GetSecret(cctx, in.Key, "", nil)
			var re *azcore.ResponseError
			switch {
			case err == nil:
				out = kvOutput{Value: *resp.Value, Found: true}
			case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
				err = nil // a definite answer: not there
			}
		}
		record(cl, in, call, out, err)
		if err != nil {
			// Back off: every failed write stays in the history as possibly applied, and each
			// one widens the checker's search.
			time.Sleep(300 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < 5000; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{Key: keys[rand.IntN(len(keys))]}
				if rand.IntN(2) == 0 {
					in.Write, in.Value = true, fmt.Sprintf("c%d-%d", cl.id, seq)
				}
				do(cl, in)
				time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
			}
		}()
	}
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
	}
	indexOf := func(s *testenv.Server) int {
		for i, n := range c.Nodes {
			if n == s {
				return i
			}
		}
		t.Fatal("unknown node")
		return -1
	}

	time.Sleep(2 * time.Second)
	follower := indexOf(c.Follower())
	setPhase("follower-cut")
	part.Isolate(follower)
	time.Sleep(4 * time.Second)
	part.Heal(follower)
	setPhase("healing-1")
	time.Sleep(2 * time.Second)
	oldLeader := indexOf(c.Leader(10 * time.Second))
	setPhase("leader-cut")
	part.Isolate(oldLeader)
	time.Sleep(4*election + time.Second)
	part.Heal(oldLeader)
	setPhase("healing-2")
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	// Final reads of every key on every node, after the cluster has settled.
	c.Leader(10 * time.Second)
	setPhase("final")
	for _, cl := range clients[:len(c.Nodes)] {
		for _, k := range keys {
			do(cl, kvInput{Key: k})
		}
	}

	mu.Lock()
	defer mu.Unlock()
	unknown := 0
	for _, op := range history {
		if op.Return == math.MaxInt64 {
			unknown++
		}
	}
	t.Logf("history: %d operations (%d writes of unknown outcome); ok by phase/node %v; failed %v; follower cut n%d, leader cut n%d",
		len(history), unknown, okOps, failedOps, follower+1, oldLeader+1)

	// The partitions must have happened and the majority must have kept serving.
	majority := (oldLeader + 1) % len(c.Nodes)
	if okOps[fmt.Sprintf("leader-cut/n%d", majority+1)] == 0 {
		t.Errorf("no operation succeeded on the majority side (n%d) while the leader was cut off", majority+1)
	}
	if failedOps[fmt.Sprintf("leader-cut/n%d", oldLeader+1)] == 0 {
		t.Errorf("no operation failed on the cut-off old leader n%d: the partition did not take effect", oldLeader+1)
	}
	if failedOps[fmt.Sprintf("follower-cut/n%d", follower+1)] == 0 {
		t.Errorf("no operation failed on the cut-off follower n%d: the partition did not take effect", follower+1)
	}
	for _, k := range []string{"final/n1", "final/n2", "final/n3"} { // the cluster settled: all answer
		if okOps[k] != len(keys) {
			t.Errorf("%s: %d of %d final reads succeeded", k, okOps[k], len(keys))
		}
	}

	res, info := porcupine.CheckOperationsVerbose(secretsModel, history, time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("porcupine: linearizable (0 violations)")
	case porcupine.Unknown:
		t.Fatalf("porcupine: no verdict within the time limit")
	default:
		out := filepath.Join(os.TempDir(), fmt.Sprintf("strongroom-partition-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(secretsModel, info, out); err == nil {
			t.Logf("visualization: %s", out)
		}
		t.Fatalf("porcupine: history is NOT linearizable")
	}
}
