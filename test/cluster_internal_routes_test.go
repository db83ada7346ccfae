package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/testenv"
)

// The node-to-node routes of the cluster port (/_cluster/v1/...) are unreachable through any
// node's public port, in every spelling an attacker tried, sealed or unsealed, over HTTP/1.1
// and HTTP/2, without a credential: each answer is 401, 404 or 503, nothing is issued (no join
// token, no peer list, no snapshot) and nothing is applied (a hand-built batch planting a join
// token does not let a node join with it).
func TestCluster_InternalRoutesUnreachableFromPublicPort(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	planted := "srjoin1.planted-by-an-attacker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	batch := plantedJoinBatch(planted)

	type probe struct {
		method, target string
		host           string // Host header; "" = the node's own
		body           []byte
	}
	var probes []probe
	routes := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/_cluster/v1/op/v1/join-token", []byte(`{"ttl":"1h"}`)},
		{"GET", "/_cluster/v1/op/v1/peers", nil},
		{"GET", "/_cluster/v1/op/v1/snapshot", nil},
		{"POST", "/_cluster/v1/op/v1/step-down", nil},
		{"POST", "/_cluster/v1/op/v1/remove-peer", []byte(`{"id":"n3"}`)},
		{"GET", "/_cluster/v1/status", nil},
		{"POST", "/_cluster/v1/apply", batch},
	}
	spell := func(p string) []string {
		rest := strings.TrimPrefix(p, "/_cluster")
		return []string{
			p,
			"/%5Fcluster" + rest,
			"/%5fcluster" + rest,
			"/%255Fcluster" + rest,
			"/_CLUSTER" + rest,
			"/_Cluster" + strings.ToUpper(rest),
			"//_cluster" + rest,
			"/_cluster/" + strings.ReplaceAll(strings.TrimPrefix(rest, "/"), "/", "//"),
			"/x/../_cluster" + rest,
			"/./_cluster" + rest,
			"/%2e%2e/_cluster" + rest,
			"/vaults/%2e%2e/_cluster" + rest,
			"/x%2F..%2F_cluster" + rest,
			"/_cluster%2F" + strings.TrimPrefix(rest, "/"),
		}
	}
	for i, n := range c.Nodes {
		for _, r := range routes {
			for _, s := range spell(r.path) {
				probes = append(probes, probe{r.method, s, "", r.body})
			}
			addr := c.ClusterAddrs[i]
			probes = append(probes,
				probe{r.method, "https://" + addr + r.path, "", r.body},
				probe{r.method, "https://" + addr + r.path, addr, r.body},
				probe{r.method, r.path, addr, r.body},
				probe{r.method, "https://localhost:" + strconv.Itoa(n.Port) + r.path, "", r.body},
			)
		}
	}

	check := func(t *testing.T, where string, status int, body []byte) {
		t.Helper()
		if status != 401 && status != 404 && status != 503 {
			t.Errorf("%s: HTTP %d, want 401, 404 or 503: %.200s", where, status, body)
		}
		for _, leak := range append([]string{"srjoin1.", `"suffrage"`, "SRSNAP1", `"commitIndex"`, `"steppedDown"`, `"removed"`}, c.ClusterAddrs...) {
			if bytes.Contains(body, []byte(leak)) {
				t.Errorf("%s: the answer leaks %q: %.200s", where, leak, body)
			}
		}
	}
	run := func(t *testing.T, state string) {
		for i, n := range c.Nodes {
			for _, p := range probes[i*len(probes)/len(c.Nodes) : (i+1)*len(probes)/len(c.Nodes)] {
				host := p.host
				if host == "" {
					host = "localhost:" + strconv.Itoa(n.Port)
				}
				status, body := rawHTTP1(t, n.Port, p.method, p.target, host, p.body)
				check(t, fmt.Sprintf("%s %s %s %s Host %s", state, c.IDs[i], p.method, p.target, host), status, body)
			}
			// HTTP/2, as a browser or SDK would send it.
			h2 := h2Client(t)
			for _, r := range routes {
				for _, target := range []string{r.path, "/%5Fcluster" + strings.TrimPrefix(r.path, "/_cluster")} {
					req, err := http.NewRequest(r.method, n.URL+target, bytes.NewReader(r.body))
					if err != nil {
						t.Fatal(err)
					}
					resp, err := h2.Do(req)
					if err != nil {
						t.Fatalf("HTTP/2 %s: %v", target, err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.ProtoMajor != 2 {
						t.Fatalf("HTTP/2 probe answered over %s", resp.Proto)
					}
					check(t, fmt.Sprintf("%s %s HTTP/2 %s %s", state, c.IDs[i], r.method, target), resp.StatusCode, body)
				}
			}
		}
	}

	t.Run("unsealed", func(t *testing.T) { run(t, "unsealed") })
	if got := len(c.Peers()); got != 3 {
		t.Fatalf("after the probes the cluster has %d members, want 3", got)
	}
	// Seal one follower (its operator socket's seal command is not a public route) and probe
	// again: a sealed node forwards nothing.
	follower := c.Follower()
	sealNode(t, c, follower)
	t.Run("one follower sealed", func(t *testing.T) { run(t, "sealed-follower") })

	if got := len(c.Peers()); got != 3 {
		t.Fatalf("after the probes the cluster has %d members, want 3", got)
	}
	// Nothing was applied: the planted token does not admit a node.
	dir := filepath.Join(t.TempDir(), "intruder")
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Binary(t), "operator", "raft", "join", leader.URL, "--token-file", tokFile, "--node-id", "intruder",
		"--cluster-addr", "127.0.0.1:1", "--data-dir", dir, "--ca-file", filepath.Join(leader.DataDir, "tls", "ca.pem")).CombinedOutput()
	if err == nil {
		t.Fatalf("a node joined with a token planted through the public port: %s", out)
	}
	// Nothing was issued: the leader's audit log holds no join token or snapshot operation.
	for _, n := range c.Nodes {
		raw, err := os.ReadFile(filepath.Join(n.DataDir, "audit", "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"OperatorRaftJoinToken", "OperatorSnapshotSave", "OperatorRaftStepDown", "OperatorRaftRemovePeer", "ClusterForwardedBatch"} {
			// The cluster's own start-up made join tokens through the operator socket; none may
			// name a cluster member as its caller other than those.
			for _, line := range bytes.Split(raw, []byte("\n")) {
				if bytes.Contains(line, []byte(`"operationName":"`+op+`"`)) && bytes.Contains(line, []byte("_cluster")) {
					t.Errorf("%s audit log: %s recorded for an internal route: %s", n.DataDir, op, line)
				}
			}
		}
	}
}

// plantedJoinBatch is a Raft command entry that would store a join token record.
func plantedJoinBatch(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	rec, _ := json.Marshal(map[string]any{"expires": time.Now().Add(time.Hour).UTC()})
	b := append([]byte{2}, store.AppendOps(nil, []store.Op{store.Put("sys/cluster/join/"+hex.EncodeToString(sum[:]), rec)})...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// rawHTTP1 sends one HTTP/1.1 request with the request target written exactly as given.
func rawHTTP1(t *testing.T, port int, method, target, host string, body []byte) (int, []byte) {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("dialing: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, target, host, len(body))
	conn.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: reading answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func h2Client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// sealNode seals one node through its authenticated /sys/seal route and waits until it says so.
func sealNode(t *testing.T, c *testenv.Cluster, n *testenv.Server) {
	t.Helper()
	sealNodeAt(t, c, n, "/sys/seal")
}

// sealNodeAt is sealNode with the route spelled as given.
func sealNodeAt(t *testing.T, c *testenv.Cluster, n *testenv.Server, route string) {
	t.Helper()
	hc := c.HTTPClient()
	tok, err := c.Credential(n, hc).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	req, _ := http.NewRequest("POST", n.URL+route, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("sealing: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("sealing %s: HTTP %d", n.URL, resp.StatusCode)
	}
	for i := 0; i < 200; i++ {
		r, err := hc.Get(n.URL + "/sys/seal-status")
		if err == nil {
			var st struct {
				Sealed bool `json:"sealed"`
			}
			_ = json.NewDecoder(r.Body).Decode(&st)
			r.Body.Close()
			if st.Sealed {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s did not seal", n.URL)
}
