package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store/bolt"
	"github.com/strongroom/strongroom/internal/testenv"
)

// A sealed leader hands leadership to an unsealed voter at once, a sealed node forwards nothing
// (it answers 503 itself), and the cluster keeps serving through the other nodes.
func TestCluster_SealedLeaderHandsOverAndSealedNodeDoesNotForward(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	// Every node's credential uses n1's URL as its authority (the cluster's public URL): keep
	// n1 unsealed.
	for leader == c.Nodes[0] {
		c.Operator(leader, "raft", "step-down")
		time.Sleep(200 * time.Millisecond)
		leader = c.Leader(10 * time.Second)
	}
	sealNode(t, c, leader)
	deadline := time.Now().Add(15 * time.Second)
	var next *testenv.Server
	for time.Now().Before(deadline) {
		if l := c.Leader(5 * time.Second); l != nil && l != leader {
			next = l
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if next == nil {
		t.Fatal("the sealed leader kept leading")
	}
	e := clusterEnv(t, c, next)
	kv := e.createVault(t, "rg-sealed", "kv-sealed-leader", nil)
	if _, err := kv.SetSecret(context.Background(), "after", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatalf("write after the hand-over: %v", err)
	}
	// Through the sealed node: its own 503, never the leader's answer.
	resp, err := c.HTTPClient().Get(leader.URL + "/subscriptions/" + leader.Admin.SubscriptionID + "/resourcegroups?api-version=2021-04-01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Strongroom-Node") != "" {
		t.Fatalf("a request through the sealed node: HTTP %d served by %q, want its own 503", resp.StatusCode, resp.Header.Get("X-Strongroom-Node"))
	}
}

// Every spelling of a node-local seal route acts on the node addressed, never on the leader.
func TestCluster_SealRouteSpellingsStayLocal(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	var f *testenv.Server
	for _, n := range c.Nodes[1:] { // n1's URL is every credential's authority: keep it up
		if n != leader {
			f = n
		}
	}
	for _, route := range []string{"/sys/seal/", "/SYS/Seal", "//sys//seal"} {
		sealNodeAt(t, c, f, route) // waits until f itself reports sealed
		if st, ok := leader.Status(); !ok || st.Role != "leader" {
			t.Fatalf("POST %s to a follower: the leader is now %+v", route, st)
		}
		f.Restart() // the file seal unseals at start
	}
}

// Operator calls are audited where they run with the real caller: a follower's socket user for
// a call passed on to the leader, the member for a batch it forwarded; every record has its own
// request id; the unauthenticated /health names no cluster address.
func TestCluster_OperatorCallsAuditedWithRealCaller(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	var follower *testenv.Server
	var followerID string
	for i, n := range c.Nodes {
		if n != leader {
			follower, followerID = n, c.IDs[i]
			break
		}
	}
	c.Operator(follower, "raft", "join-token", "--ttl", "5m")
	c.Operator(follower, "raft", "autopilot", "state")
	if _, errOut, err := c.TryOperator(follower, "raft", "step-down"); err != nil {
		t.Fatalf("step-down through a follower: %v %s", err, errOut)
	}
	uid := os.Getuid()
	want := map[string]string{
		"OperatorRaftJoinToken": `"clientInfo":"this node's operator socket (uid ` + itoa(uid) + `)"`,
		"OperatorRaftStepDown":  `"clientInfo":"the operator socket of node ` + followerID + ` (uid ` + itoa(uid) + `)"`,
		"ClusterForwardedBatch": `"clientInfo":"cluster member ` + followerID + `"`,
	}
	seenIDs := map[string]bool{}
	found := map[string]bool{}
	for _, n := range c.Nodes {
		raw, err := os.ReadFile(filepath.Join(n.DataDir, "audit", "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var rec struct {
				Op        string `json:"operationName"`
				RequestID string `json:"requestId"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			if seenIDs[rec.RequestID] {
				t.Errorf("request id %q recorded twice (%s)", rec.RequestID, rec.Op)
			}
			seenIDs[rec.RequestID] = true
			if w, ok := want[rec.Op]; ok && bytes.Contains(line, []byte(w)) {
				found[rec.Op] = true
			}
		}
	}
	for op, w := range want {
		if !found[op] {
			t.Errorf("no %s record with %s", op, w)
		}
	}
	for _, n := range c.Nodes {
		resp, err := c.HTTPClient().Get(n.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, addr := range c.ClusterAddrs {
			if bytes.Contains(body, []byte(addr)) || bytes.Contains(body, []byte("leaderAddr")) {
				t.Errorf("/health names a cluster address: %s", body)
			}
		}
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// The cluster CA key is handed to no joiner and kept in no folder once the bootstrap node is
// unsealed, and holding it does not help: a removed member (which has the root key and its
// copy of the store, so it can open the CA key record) can neither connect with its own
// certificate nor with one it mints for a current member.
func TestCluster_CAKeyInStoreAndPinnedMemberCertificates(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	for _, n := range c.Nodes {
		if _, err := os.Stat(filepath.Join(n.DataDir, "cluster", "ca-key.pem")); err == nil {
			// The bootstrap node moves it right after its first unseal.
			deadline := time.Now().Add(10 * time.Second)
			for err == nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				_, err = os.Stat(filepath.Join(n.DataDir, "cluster", "ca-key.pem"))
			}
			if err == nil {
				t.Fatalf("%s still holds cluster/ca-key.pem", n.DataDir)
			}
		}
	}
	// A node still joins (the leader signs with the key from the store).
	c.AddNode("n4", nil)
	c.WaitVoters(4)

	removed := c.Nodes[2]
	removedID := c.IDs[2]
	survivor := c.Leader(10 * time.Second)
	if survivor == removed {
		c.Operator(removed, "raft", "step-down")
		survivor = c.Leader(10 * time.Second)
	}
	c.Operator(survivor, "raft", "remove-peer", removedID)
	removed.Stop()

	// The removed member opens the CA key from its own copy of the store with the root key.
	caKey := openCAKeyFromFolder(t, removed.DataDir)
	caCert := readCert(t, filepath.Join(removed.DataDir, "cluster", "ca.pem"))
	ownCert, err := tls.LoadX509KeyPair(filepath.Join(removed.DataDir, "cluster", "node.pem"), filepath.Join(removed.DataDir, "cluster", "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	forged := mintNodeCert(t, caCert, caKey, c.IDs[0])
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for i, n := range c.Nodes {
		if n == removed {
			continue
		}
		for name, cert := range map[string]tls.Certificate{"own certificate of removed " + removedID: ownCert, "forged certificate for " + c.IDs[0]: forged} {
			status, err := clusterStatusWith(c.ClusterAddrs[i], cert, pool)
			if err == nil && status == 200 {
				t.Errorf("%s: node %s answered a cluster call (HTTP %d)", name, c.IDs[i], status)
			}
		}
	}
}

func openCAKeyFromFolder(t *testing.T, dataDir string) *ecdsa.PrivateKey {
	t.Helper()
	root, err := seal.ReadKeyFile(filepath.Join(dataDir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dataDir, "raft", "fsm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	kr, err := keyring.Load(ctx, db, root)
	if err != nil {
		t.Fatalf("loading the keyring from the removed member's store: %v", err)
	}
	caCert := readCert(t, filepath.Join(dataDir, "cluster", "ca.pem"))
	sum := sha256.Sum256(caCert.Raw)
	blob, err := db.Get(ctx, "sys/cluster/ca-key/"+hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("the CA key record: %v", err)
	}
	p, err := kr.OpenRoot("cluster-ca-key", blob)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(p)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mintNodeCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, id string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("urn:strongroom:node:" + id)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: id},
		DNSNames: []string{"strongroom-cluster"}, URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clusterStatusWith calls GET /_cluster/v1/status on a cluster port with the given client
// certificate over the node-to-node protocol.
func clusterStatusWith(addr string, cert tls.Certificate, pool *x509.CertPool) (int, error) {
	tr := &http.Transport{DialTLSContext: nil, TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool,
		ServerName: "strongroom-cluster", NextProtos: []string{"strongroom-rpc/1"}, MinVersion: tls.VersionTLS13}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + addr + "/_cluster/v1/status")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == 200 {
		return 200, nil
	}
	return resp.StatusCode, errors.New(strings.TrimSpace(resp.Status))
}
