package test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// A 3-node cluster with scheduled snapshots every second (retain 2):
//   - /metrics needs a token; with the admin's, every node reports its own Raft role, and the
//     followers' commit and applied indexes match the leader's; no scrape holds a secret's name
//     or value (a vault's name may be a label: docs/monitoring/README.md);
//   - only the leader writes scheduled snapshots, and keeps two;
//   - the leader's audit log holds the joins of n2 and n3 and a refused join attempt, never a
//     token.
func TestCluster_Metrics_ScheduledSnapshots_JoinAudit(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: []string{"--snapshot-schedule", "1s", "--snapshot-retain", "2"}})
	follower := c.Follower()
	fe := clusterEnv(t, c, follower)
	kv := fe.createVault(t, "rg-metrics", "kv-hiddenvault", nil)
	const secretName, secretValue = "hidden-secret-name", "hidden-secret-value"
	if _, err := kv.SetSecret(ctx, secretName, azsecrets.SetSecretParameters{Value: to.Ptr(secretValue)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.GetSecret(ctx, secretName, "", nil); err != nil {
		t.Fatal(err)
	}
	tok, err := fe.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := scrape(t, fe.hc, follower.URL, ""); status != 401 {
		t.Fatalf("/metrics without a token: HTTP %d, want 401", status)
	}
	if status, _ := scrape(t, fe.hc, follower.URL, "not-a-token"); status != 401 {
		t.Fatalf("/metrics with a bad token: HTTP %d, want 401", status)
	}

	// Scrape every node until the followers have applied what the leader has.
	var leader *testenv.Server
	var bodies map[*testenv.Server]string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		leader = c.Leader(10 * time.Second)
		bodies = map[*testenv.Server]string{}
		for _, n := range c.Nodes {
			status, body := scrape(t, fe.hc, n.URL, tok.Token)
			if status != 200 {
				t.Fatalf("/metrics on %s: HTTP %d\n%s", n.URL, status, body)
			}
			bodies[n] = body
		}
		lb := bodies[leader]
		settled := metricValue(lb, `strongroom_raft_role{role="leader"}`) == 1 && metricValue(lb, "strongroom_raft_voters") == 3 &&
			metricValue(lb, "strongroom_raft_peers") == 3 && metricValue(lb, "strongroom_raft_applied_index") > 0 &&
			metricValue(lb, "strongroom_raft_applied_index") <= metricValue(lb, "strongroom_raft_commit_index")
		for n, b := range bodies {
			if n == leader {
				continue
			}
			settled = settled && metricValue(b, `strongroom_raft_role{role="follower"}`) == 1 && metricValue(b, `strongroom_raft_role{role="leader"}`) == 0 &&
				metricValue(b, "strongroom_raft_commit_index") == metricValue(lb, "strongroom_raft_commit_index") &&
				metricValue(b, "strongroom_raft_applied_index") == metricValue(lb, "strongroom_raft_applied_index") &&
				metricValue(b, "strongroom_raft_term") == metricValue(lb, "strongroom_raft_term") &&
				metricValue(b, "strongroom_raft_last_contact_seconds") >= 0 && metricValue(b, "strongroom_raft_leader_known") == 1
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			for n, b := range bodies {
				t.Logf("%s:\n%s", n.URL, grepLines(b, "strongroom_raft_"))
			}
			t.Fatal("the nodes' Raft metrics did not settle")
		}
	}
	for n, b := range bodies {
		for _, bad := range []string{secretName, secretValue, "HIDDEN"} {
			if strings.Contains(b, bad) {
				t.Fatalf("scrape of %s holds %q", n.URL, bad)
			}
		}
		if metricValue(b, "strongroom_sealed") != 0 || metricValue(b, "strongroom_audit_healthy") != 1 {
			t.Fatalf("%s: seal or audit gauges wrong:\n%s", n.URL, grepLines(b, "strongroom_sealed", "strongroom_audit"))
		}
	}
	if v := metricValue(bodies[follower], `strongroom_http_requests_total{class="data",code="200"}`); v < 2 {
		t.Fatalf("follower counted %v data-plane 200s, want >= 2", v)
	}

	// Scheduled snapshots: the leader writes them and keeps two; followers write none.
	leaderDir := filepath.Join(leader.DataDir, "snapshots")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, lb := scrape(t, fe.hc, leader.URL, tok.Token)
		if metricValue(lb, `strongroom_snapshot_scheduled_total{result="success"}`) >= 3 && len(snapFiles(t, leaderDir)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader's scheduled snapshots: %v\n%s", snapFiles(t, leaderDir), grepLines(lb, "strongroom_snapshot"))
		}
	}
	for _, n := range c.Nodes {
		if n == leader {
			continue
		}
		_, b := scrape(t, fe.hc, n.URL, tok.Token)
		if files := snapFiles(t, filepath.Join(n.DataDir, "snapshots")); len(files) != 0 ||
			metricValue(b, `strongroom_snapshot_scheduled_total{result="success"}`) != 0 || metricValue(b, `strongroom_snapshot_scheduled_total{result="failure"}`) != 0 {
			t.Fatalf("follower %s wrote scheduled snapshots: %v\n%s", n.URL, files, grepLines(b, "strongroom_snapshot"))
		}
	}

	// A join attempt with a bogus token, through a follower: refused and audited by the leader.
	const bogus = "srjoin1.bogus-token-never-issued-0123456789"
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(bogus), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Binary(t), "operator", "raft", "join", follower.URL, "--ca-file", filepath.Join(follower.DataDir, "tls", "ca.pem"),
		"--token-file", tokFile, "--data-dir", filepath.Join(t.TempDir(), "n9"), "--node-id", "n9", "--cluster-addr", "127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") {
		t.Fatalf("join with a bogus token: %v\n%s", err, out)
	}
	joins := map[string]int{} // "<node id> <resultType> <status>" -> count, over every node's log
	for _, n := range c.Nodes {
		raw, err := os.ReadFile(filepath.Join(n.DataDir, "audit", "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), bogus) || strings.Contains(string(raw), "srjoin1.") {
			t.Fatalf("%s's audit log holds a join token", n.URL)
		}
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct {
				OperationName string `json:"operationName"`
				ResultType    string `json:"resultType"`
				Properties    struct {
					ID     string `json:"id"`
					Status int    `json:"httpStatusCode"`
				} `json:"properties"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.OperationName == "ClusterJoin" {
				joins[rec.Properties.ID+" "+rec.ResultType+" "+strconv.Itoa(rec.Properties.Status)]++
			}
		}
	}
	if joins["n2 Success 200"] != 1 || joins["n3 Success 200"] != 1 || joins["n9 Failure 403"] != 1 {
		t.Fatalf("join audit records: %v", joins)
	}
	noDataRace(t, c.Nodes...)
	t.Logf("leader %s; join records %v; leader indexes commit=%v applied=%v",
		leader.URL, joins, metricValue(bodies[leader], "strongroom_raft_commit_index"), metricValue(bodies[leader], "strongroom_raft_applied_index"))
}

func grepLines(body string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
