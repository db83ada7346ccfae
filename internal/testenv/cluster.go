package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ClusterOptions tune StartCluster.
type ClusterOptions struct {
	Size int // voters to form (default 3)
	// ElectionTimeout and PromoteAfter are passed to every node (defaults 1s and 1s).
	ElectionTimeout, PromoteAfter time.Duration
	Extra                         []string // extra flags for every node
	// SealKeyFile, when set, is copied to the first node's seal.key before it starts, so the new
	// cluster has the same root key as another deployment (restoring its snapshots).
	SealKeyFile string
	// Partition, when set, gives every node its own loopback IP and a proxy it advertises, so
	// the test can cut nodes off (see Partitioner).
	Partition *Partitioner
	// Shamir starts every node with the shamir seal (a --config file added to its flags): n1 is
	// initialized through /sys/init with 3 shares and threshold 2, and every node is unsealed
	// with Keys as it starts. Do not combine it with a --config in Extra.
	Shamir bool
	// Env is extra environment for every node (a PKCS#11 module's configuration and PIN).
	Env []string
	// CAFile is the CA of an operator certificate every node serves (--tls-cert-file in
	// Extra); clients and joins trust it instead of each node's local CA.
	CAFile string
}

// Cluster is a Raft cluster of real server processes on loopback. Every node uses the same
// public URL (the first node's), as a real cluster behind one name does, so tokens minted by any
// leader verify on every node.
type Cluster struct {
	t     testing.TB
	opts  ClusterOptions
	Nodes []*Server
	IDs   []string
	// ClusterAddrs[i] is the cluster address other nodes dial for node i (its proxy under a
	// Partitioner).
	ClusterAddrs []string
	PublicURL    string
	// Keys are the current unseal shares (Shamir clusters); Admin the bootstrap credential.
	Keys  []string
	Admin Admin
}

// StartCluster bootstraps node n1, joins the others with one-time join tokens through the real
// `strongroom operator raft join` command, and waits until all are voters.
func StartCluster(t testing.TB, opts *ClusterOptions) *Cluster {
	t.Helper()
	if opts == nil {
		opts = &ClusterOptions{}
	}
	o := *opts
	if o.Size == 0 {
		o.Size = 3
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = time.Second
	}
	if o.PromoteAfter == 0 {
		o.PromoteAfter = time.Second
	}
	if o.Shamir {
		p := filepath.Join(t.TempDir(), "shamir.yaml")
		if err := os.WriteFile(p, []byte("seal:\n  type: shamir\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		o.Extra = append(append([]string{}, o.Extra...), "--config", p)
	}
	c := &Cluster{t: t, opts: o}
	first := c.newNode("n1", []string{"--bootstrap"}) // its public URL comes from the port it binds
	if o.SealKeyFile != "" {
		b, err := os.ReadFile(o.SealKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(first.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(first.DataDir, "seal.key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.Shamir {
		first.Sealed = true
		first.launch()
		c.adoptPublicURL(first)
		c.initShamir(first)
		c.Unseal(first)
	} else {
		first.launch()
		c.adoptPublicURL(first)
		c.Admin = first.Admin
	}
	for i := 2; i <= o.Size; i++ {
		c.AddNode(fmt.Sprintf("n%d", i), nil)
	}
	c.WaitVoters(o.Size)
	return c
}

// adoptPublicURL makes the first node's URL the cluster's public URL, which every later node is
// given (and the first node too on restarts, so its flags read like the others').
func (c *Cluster) adoptPublicURL(first *Server) {
	c.PublicURL = first.URL
	first.Extra = append(first.Extra, "--public-url", c.PublicURL)
}

// newNode prepares a node that binds its public port itself (port 0, read back at start); its
// cluster address must be known before start (join records it), so it is picked in advance
// from outside the kernel's ephemeral range (see reservePort).
func (c *Cluster) newNode(id string, extra []string) *Server {
	c.t.Helper()
	listen, dial := "127.0.0.1:"+strconv.Itoa(reservePort(c.t, "127.0.0.1")), ""
	var flags []string
	if p := c.opts.Partition; p != nil {
		listen, dial = p.AddNode(len(c.Nodes))
		flags = append(flags, "--cluster-advertise", dial)
	} else {
		dial = listen
	}
	flags = append(flags, "--cluster-addr", listen, "--node-id", id)
	if c.PublicURL != "" { // not yet for the first node
		flags = append(flags, "--public-url", c.PublicURL)
	}
	flags = append(flags, "--election-timeout", c.opts.ElectionTimeout.String(), "--promote-after", c.opts.PromoteAfter.String(),
		"--vault-requests-per-10s=0")
	flags = append(flags, c.opts.Extra...)
	s := &Server{t: c.t, DataDir: filepath.Join(c.t.TempDir(), "data"), Extra: append(flags, extra...), Env: c.opts.Env, CAFile: c.opts.CAFile}
	c.t.Cleanup(func() { s.Stop() })
	c.Nodes = append(c.Nodes, s)
	c.IDs = append(c.IDs, id)
	c.ClusterAddrs = append(c.ClusterAddrs, dial)
	return s
}

// AddNode joins a new node with a fresh join token from a running member and starts it. It
// copies the first node's seal key (the file seal's root key: every member needs it) and admin
// credential file.
func (c *Cluster) AddNode(id string, extra []string) *Server {
	c.t.Helper()
	member := c.anyRunning()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(c.Operator(member, "raft", "join-token", "--ttl", "10m"), &tok); err != nil || !strings.HasPrefix(tok.Token, "srjoin1.") {
		c.t.Fatalf("join-token output: %v", err)
	}
	s := c.newNode(id, extra)
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	for _, f := range []string{"seal.key", "admin.json"} {
		b, err := os.ReadFile(filepath.Join(c.Nodes[0].DataDir, f))
		if os.IsNotExist(err) { // seals other than file keep neither in the data folder
			continue
		}
		if err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.DataDir, f), b, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	tokFile := filepath.Join(c.t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(tok.Token), 0o600); err != nil {
		c.t.Fatal(err)
	}
	args := []string{"operator", "raft", "join", member.URL, "--ca-file", member.APICAFile(),
		"--token-file", tokFile, "--data-dir", s.DataDir, "--node-id", id, "--cluster-addr", c.ClusterAddrs[len(c.ClusterAddrs)-1]}
	for i, a := range extra {
		if a == "--non-voter" || strings.HasPrefix(a, "--region") {
			args = append(args, a)
			if a == "--region" && i+1 < len(extra) {
				args = append(args, extra[i+1])
			}
		}
	}
	if out, err := exec.Command(Binary(c.t), args...).CombinedOutput(); err != nil {
		c.t.Fatalf("operator raft join: %v\n%s", err, out)
	}
	s.Admin = c.Admin // printed by the first node's start only, for seals other than file
	if c.opts.Shamir {
		s.Sealed = true
		s.launch()
		c.Unseal(s)
	} else {
		s.launch()
	}
	return s
}

// initShamir initializes the cluster through node's /sys/init (3 shares, threshold 2).
func (c *Cluster) initShamir(node *Server) {
	c.t.Helper()
	resp, err := node.HTTPClient().Post(node.URL+"/sys/init", "application/json", strings.NewReader(`{"secret_shares":3,"secret_threshold":2}`))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Keys  []string `json:"keys_base64"`
		Admin Admin    `json:"admin"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Keys) != 3 {
		c.t.Fatalf("/sys/init: HTTP %d, %v", resp.StatusCode, err)
	}
	c.Keys, c.Admin = out.Keys, out.Admin
}

// Unseal enters shares from c.Keys on a Shamir node until it is unsealed, then waits until it
// is healthy and gives it the cluster's admin credential.
func (c *Cluster) Unseal(node *Server) {
	c.t.Helper()
	hc := node.HTTPClient()
	for _, k := range c.Keys {
		body, _ := json.Marshal(map[string]string{"key": k})
		resp, err := hc.Post(node.URL+"/sys/unseal", "application/json", strings.NewReader(string(body)))
		if err != nil {
			c.t.Fatal(err)
		}
		var st struct {
			Sealed bool `json:"sealed"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			c.t.Fatalf("unsealing %s: HTTP %d, %v", node.URL, resp.StatusCode, err)
		}
		if !st.Sealed {
			break
		}
	}
	node.WaitHealthy()
	node.Admin = c.Admin
}

// RestartAll stops every node, starts them all together (a lone node cannot find a quorum) and
// waits until each serves; Shamir nodes are unsealed with c.Keys.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	for _, s := range c.Nodes {
		s.Stop()
	}
	exits := make([]chan struct{}, len(c.Nodes))
	for i, s := range c.Nodes {
		s.Sealed = c.opts.Shamir
		exits[i] = s.spawn()
	}
	for i, s := range c.Nodes {
		s.waitUp(exits[i])
	}
	if c.opts.Shamir {
		for _, s := range c.Nodes {
			c.Unseal(s)
		}
	}
	c.Settled(60 * time.Second)
}

// Settled waits (bounded by within) until every running node names the same leader and that
// node reports itself leader: after a whole-cluster restart the first election can take a few
// terms, and a client retrying a 503 for a few seconds should not be what a test relies on.
func (c *Cluster) Settled(within time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l := c.agreedLeader(); l != nil {
			return l
		}
	}
	c.t.Fatalf("the cluster did not agree on a leader within %v", within)
	return nil
}

func (c *Cluster) agreedLeader() *Server {
	var leader *Server
	id := ""
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		st, ok := s.Status()
		if !ok || st.Leader == "" || (id != "" && st.Leader != id) {
			return nil
		}
		id = st.Leader
		if st.Role == "leader" {
			leader = s
		}
	}
	return leader
}

func (c *Cluster) anyRunning() *Server {
	for _, s := range c.Nodes {
		if s.running() {
			return s
		}
	}
	c.t.Fatal("no running node")
	return nil
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Operator runs `strongroom operator ARGS... --data-dir <node's>` and returns its stdout.
func (c *Cluster) Operator(node *Server, args ...string) []byte {
	c.t.Helper()
	out, stderr, err := c.TryOperator(node, args...)
	if err != nil {
		c.t.Fatalf("strongroom operator %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// TryOperator is Operator for commands expected to fail: it returns stdout, stderr and the error.
func (c *Cluster) TryOperator(node *Server, args ...string) (stdout []byte, stderr string, err error) {
	c.t.Helper()
	cmd := exec.Command(Binary(c.t), append(append([]string{"operator"}, args...), "--data-dir", node.DataDir)...)
	var eb strings.Builder
	cmd.Stderr = &eb
	out, err := cmd.Output()
	return out, eb.String(), err
}

// NodeStatus is the cluster part of /health.
type NodeStatus struct {
	NodeID            string `json:"nodeId"`
	Role              string `json:"role"`
	Leader            string `json:"leader"`
	Term              uint64 `json:"term"`
	CommitIndex       uint64 `json:"commitIndex"`
	AppliedIndex      uint64 `json:"appliedIndex"`
	LastSnapshotIndex uint64 `json:"lastSnapshotIndex"`
}

// Status reads a node's /health; ok is false when it does not answer.
func (s *Server) Status() (NodeStatus, bool) {
	pool, err := s.tryPool()
	if err != nil {
		return NodeStatus{}, false
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(s.URL + "/health")
	if err != nil {
		return NodeStatus{}, false
	}
	defer resp.Body.Close()
	var doc struct {
		Cluster NodeStatus `json:"cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil || doc.Cluster.NodeID == "" {
		return NodeStatus{}, false
	}
	return doc.Cluster, true
}

// Leader waits (bounded by within) until a running node reports itself leader.
func (c *Cluster) Leader(within time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, s := range c.Nodes {
			if !s.running() {
				continue
			}
			if st, ok := s.Status(); ok && st.Role == "leader" {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", within)
	return nil
}

// Follower returns a running node other than the leader.
func (c *Cluster) Follower() *Server {
	c.t.Helper()
	l := c.Leader(30 * time.Second)
	for _, s := range c.Nodes {
		if s != l && s.running() {
			return s
		}
	}
	c.t.Fatal("no running follower")
	return nil
}

// Peer is one row of list-peers.
type Peer struct {
	ID        string `json:"id"`
	Suffrage  string `json:"suffrage"`
	Region    string `json:"region"`
	DRReplica bool   `json:"drReplica"`
	Leader    bool   `json:"leader"`
}

// Peers runs list-peers on a running node.
func (c *Cluster) Peers() []Peer {
	c.t.Helper()
	var peers []Peer
	if err := json.Unmarshal(c.Operator(c.anyRunning(), "raft", "list-peers"), &peers); err != nil {
		c.t.Fatal(err)
	}
	return peers
}

// WaitVoters waits (up to 60 s) until the cluster has n voters.
func (c *Cluster) WaitVoters(n int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		voters := 0
		for _, p := range c.Peers() {
			if p.Suffrage == "voter" {
				voters++
			}
		}
		if voters == n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d voters after 60s, want %d: %+v", voters, n, c.Peers())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Credential is the bootstrap admin's credential with the cluster's public URL as authority
// (MSAL checks that the issuer matches the authority it asked).
func (c *Cluster) Credential(node *Server, hc *http.Client) azcore.TokenCredential {
	return c.CredentialAs(node.Admin, hc)
}

// CredentialAs is Credential for another admin (one restored from a snapshot).
func (c *Cluster) CredentialAs(admin Admin, hc *http.Client) azcore.TokenCredential {
	cred, err := azidentity.NewClientSecretCredential(admin.TenantID, admin.ClientID, admin.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.PublicURL + "/"}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return cred
}

// HTTPClient trusts every node's API CA (each node made its own) and dials *.localhost on
// loopback.
func (c *Cluster) HTTPClient() *http.Client {
	c.t.Helper()
	pool := x509.NewCertPool()
	for _, s := range c.Nodes {
		b, err := os.ReadFile(s.APICAFile())
		if err != nil {
			c.t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
	}}
}

// UseShamir records that the cluster moved to the shamir seal (operator seal migrate) with
// keys: every node's next start gets a shamir config and is unsealed with them.
func (c *Cluster) UseShamir(keys []string) {
	c.t.Helper()
	p := filepath.Join(c.t.TempDir(), "shamir.yaml")
	if err := os.WriteFile(p, []byte("seal:\n  type: shamir\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	for _, s := range c.Nodes {
		s.Extra = append(s.Extra, "--config", p)
	}
	c.opts.Shamir, c.Keys = true, keys
}
