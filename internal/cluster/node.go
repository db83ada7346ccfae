// Package cluster runs a Strongroom server as a member of a Raft cluster: the cluster CA and
// node certificates, the mutually authenticated cluster port (Raft plus node-to-node RPCs),
// one-time join tokens, leader forwarding of API requests, membership (autopilot-style promotion
// of new nodes) and the node-local operator socket.
//
// Invariants:
//   - Every connection on the cluster port presents a certificate from the cluster CA, and once a
//     node holds a Raft configuration only current members are accepted.
//   - A node is admitted only with a one-time join token: the token's SHA-256 is stored in the
//     replicated store and consumed by a conditional delete, so it works exactly once cluster-wide.
//     The admin credential is never used for joining.
//   - API requests are executed (and audited) on the leader after a read barrier; a follower only
//     proxies them, except requests that ask for a stale read, which it serves from its own copy.
//   - The replicated store sees only ciphertext from the service; the cluster's own records under
//     "sys/cluster/" hold no secrets (token hashes with expiry, node labels).
package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/strongroom/strongroom/internal/audit"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// Options configure Start.
type Options struct {
	// DataDir is the server's data folder: cluster/ (certificates), raft/ (log, snapshots, state
	// machine) and operator.sock live in it.
	DataDir string
	Cluster config.ClusterConfig
	Log     *slog.Logger
	// RaftLog receives hashicorp/raft's own log lines (warnings and up); nil discards them.
	RaftLog io.Writer
	// OnApplied is passed to the store: keys applied on this node (see raftstore.Options).
	OnApplied func(keys []string, restored bool)
	// Audit records each join attempt this node (as leader) decided (joinaudit.go), each
	// operator call it executes and each batch a member forwards (opaudit.go). Its error makes
	// the call answer 503 instead (fail-closed); nil refuses them all.
	Audit audit.Recorder
	// PublicURL is this node's API origin, named in join records.
	PublicURL string
}

// Node is a running cluster member. It is safe for concurrent use.
type Node struct {
	opts  Options
	cfg   config.ClusterConfig
	log   *slog.Logger
	mat   *material
	mux   *mux
	store *raftstore.Store
	// member is the store as the TLS verifier sees it: the cluster port accepts handshakes
	// before the store is open, so isMember must not read the plain field.
	member atomic.Pointer[raftstore.Store]
	rpc    *http.Server // node-to-node calls (protoRPC)
	fwd    *http.Server // API requests forwarded by followers (protoForward)
	peers  *http.Client // node-to-node client (protoRPC)
	// forwarder carries API requests to the leader (protoForward).
	forwarder http.RoundTripper
	api       atomic.Pointer[http.Handler]
	ready     atomic.Pointer[func() bool] // see Handler
	// localCAKey is the CA key of cluster/ca-key.pem until it has moved into the store (cakey.go).
	localCAKey atomic.Pointer[ecdsa.PrivateKey]
	// stagerBox receives root keys staged by the leader during a rekey (rootkey.go).
	stagerBox atomic.Pointer[stagerBox]
	opSrv     *http.Server
	pilot     pilot
	// sealer is the unsealed keyring, for snapshot files (see snapshot.go).
	sealer atomic.Pointer[sealerBox]

	stop chan struct{}
	wg   sync.WaitGroup
}

// Start joins or bootstraps as configured, starts Raft and the cluster port, and waits until this
// node's copy has caught up with the leader's commit index (or ctx ends).
func Start(ctx context.Context, opts Options) (*Node, error) {
	cfg := opts.Cluster
	n := &Node{opts: opts, cfg: cfg, log: opts.Log, stop: make(chan struct{}), pilot: pilot{stable: map[string]time.Time{}, sick: map[string]time.Time{}}}
	mat, err := n.material(ctx)
	if err != nil {
		return nil, err
	}
	n.mat = mat
	if mat.caKey != nil {
		n.localCAKey.Store(mat.caKey)
	}
	source := sourceAddr(cfg.Addr)
	n.dialPeers(source)
	if n.mux, err = newMux(cfg.Addr, mat.serverTLS([]string{protoRaft, protoRPC, protoForward}, n.admit), n.log); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	if err := n.openRaft(source); err != nil {
		return nil, err
	}
	n.serveClusterPort()
	if err := n.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := n.recordSelf(ctx); err != nil {
		return nil, err
	}
	if err := n.startOperatorSocket(); err != nil {
		return nil, err
	}
	n.wg.Add(2)
	go n.autopilot()
	go n.sealedLeaderWatch()
	ok = true
	return n, nil
}

// material loads this node's certificates, first bootstrapping a new cluster or joining one
// (cluster.retry_join) when the data folder has none, and checks they were made for this node.
func (n *Node) material(ctx context.Context) (*material, error) {
	cfg := n.cfg
	dir := filepath.Join(n.opts.DataDir, "cluster")
	mat, err := loadMaterial(dir)
	switch {
	case errors.Is(err, errNoMaterial) && cfg.Bootstrap:
		n.log.Info("bootstrapping a new cluster", "node_id", cfg.NodeID, "cluster_addr", cfg.Addr)
		mat, err = bootstrapMaterial(dir, nodeDoc{ID: cfg.NodeID, Region: cfg.Region, Addr: cfg.AdvertiseAddr()})
	case errors.Is(err, errNoMaterial) && len(cfg.RetryJoin) > 0:
		err = n.retryJoin(ctx)
		if err == nil {
			mat, err = loadMaterial(dir)
		}
	case errors.Is(err, errNoMaterial):
		return nil, fmt.Errorf("starting cluster node: this node has not joined a cluster: run `strongroom operator raft join` first, set cluster.retry_join, or bootstrap a new cluster with --bootstrap")
	}
	if err != nil {
		return nil, err
	}
	if mat.nodeDoc.ID != cfg.NodeID || mat.nodeDoc.Addr != cfg.AdvertiseAddr() {
		return nil, fmt.Errorf("starting cluster node: the data folder was joined as node %q at %s, but the configuration says %q at %s",
			mat.nodeDoc.ID, mat.nodeDoc.Addr, cfg.NodeID, cfg.AdvertiseAddr())
	}
	return mat, nil
}

// dialPeers makes the clients of node-to-node calls and of forwarded API requests: separate
// protocols, connections and handlers on the cluster port (see mux.go); every dial checks which
// node answered. source, when set, is the local address to dial from.
func (n *Node) dialPeers(source *net.TCPAddr) {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if source != nil {
		dialer.LocalAddr = source
	}
	peerTransport := func(proto string) *http.Transport {
		cfg := n.mat.clientTLS(proto)
		return &http.Transport{
			MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: 90 * time.Second,
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return n.dialTLS(ctx, dialer, addr, cfg) },
		}
	}
	n.peers = &http.Client{Transport: peerTransport(protoRPC)}
	n.forwarder = peerTransport(protoForward)
}

// openRaft opens this node's Raft store over the cluster port's Raft protocol.
func (n *Node) openRaft(source *net.TCPAddr) error {
	cfg := n.cfg
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: orDiscard(n.opts.RaftLog), Level: hclog.Warn})
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &streamLayer{chanListener: n.mux.raft, advertise: tcpAddr(cfg.AdvertiseAddr()), tls: n.mat.clientTLS(protoRaft), source: source,
			verify: n.verifyAnswer},
		MaxPool: 4, Timeout: 10 * time.Second, Logger: hl,
	})
	st, err := raftstore.Open(raftstore.Options{
		Dir: filepath.Join(n.opts.DataDir, "raft"), ID: raft.ServerID(cfg.NodeID), Transport: trans,
		Bootstrap: cfg.Bootstrap, Forward: n.forwardEntry, OnApplied: n.applied,
		// Followers notice a silent leader after half to all of the election timeout (Raft
		// randomizes it), so a new leader is in place well within one election timeout or two.
		HeartbeatTimeout: cfg.ElectionTimeout / 2, ElectionTimeout: cfg.ElectionTimeout, LeaderLeaseTimeout: cfg.ElectionTimeout / 4,
		SnapshotThreshold: cfg.SnapshotThreshold, SnapshotInterval: cfg.SnapshotInterval, TrailingLogs: cfg.TrailingLogs, Logger: hl,
	})
	if err != nil {
		return err
	}
	n.store = st
	n.member.Store(st)
	return nil
}

// serveClusterPort serves node-to-node calls and forwarded API requests on their protocols.
func (n *Node) serveClusterPort() {
	clusterServer := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if rc, ok := c.(*rpcConn); ok {
					return context.WithValue(ctx, tlsStateKey{}, &rc.state)
				}
				return ctx
			},
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	}
	n.rpc = clusterServer(n.rpcHandler())
	n.fwd = clusterServer(n.memberOnly(n.forwardHandler()))
	n.wg.Add(2)
	go func() { defer n.wg.Done(); _ = n.rpc.Serve(n.mux.rpc) }()
	go func() { defer n.wg.Done(); _ = n.fwd.Serve(n.mux.fwd) }()
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Store is the replicated store.
func (n *Node) Store() *raftstore.Store { return n.store }

// isMember admits a node id: any id while this node has no configuration yet (it is joining
// and the leader is about to contact it), afterwards only current members.
func (n *Node) isMember(id string) bool {
	st := n.member.Load()
	if st == nil {
		return false
	}
	f := st.Raft().GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		return true
	}
	for _, s := range servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// admit is the cluster port's handshake check: a current member with its pinned certificate.
func (n *Node) admit(c *x509.Certificate) error {
	_, err := n.memberID(c)
	return err
}

// recordSelf makes sure this node's record pins its certificate (a bootstrapping node writes
// its record here; nodes of a cluster from before pinning add the pin at their next start, and
// every node again after a snapshot restore, which may bring another cluster's records).
func (n *Node) recordSelf(ctx context.Context) error {
	pin, ca := certPin(n.mat.node.Certificate[0]), certPin(n.mat.caCert.Raw)
	m := n.nodeMeta(ctx, n.cfg.NodeID)
	switch {
	case m.CertSHA256 == pin && m.CA == ca:
		return nil
	case m.CertSHA256 != "" && m.CA == ca:
		return fmt.Errorf("starting cluster node: this node's certificate is not the one node %q joined with (cluster/node.pem was replaced)", n.cfg.NodeID)
	}
	if m.Region == "" {
		m.Region = n.cfg.Region
	}
	m.CertSHA256, m.CA = pin, ca
	return n.putNodeMeta(ctx, n.cfg.NodeID, m)
}

// applied passes applied keys on, and re-records this node's pin after a snapshot restore.
func (n *Node) applied(keys []string, restored bool) {
	if restored {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.recordSelf(ctx); err != nil {
				n.log.Warn("re-recording this node's certificate pin after a restore", "err", err)
			}
		}()
	}
	if n.opts.OnApplied != nil {
		n.opts.OnApplied(keys, restored)
	}
}

// catchUp waits for a leader and then for this node to apply everything the leader had
// committed when asked, so start-up reads (seal configuration, keyring) see the cluster's state.
func (n *Node) catchUp(ctx context.Context) error {
	last := time.Now()
	var why error
	for {
		addr, id, err := n.store.WaitLeader(ctx)
		if err != nil {
			return fmt.Errorf("starting cluster node: %w", err)
		}
		if string(id) == n.cfg.NodeID {
			if err := n.store.ReadBarrier(ctx); err == nil {
				n.log.Info("cluster node ready", "role", "leader", "applied_index", n.store.AppliedIndex())
				return nil
			}
		} else if st, err := n.peerStatus(ctx, string(addr)); err == nil {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = n.store.WaitApplied(wctx, st.CommitIndex)
			cancel()
			if err == nil {
				n.log.Info("cluster node ready", "role", "follower", "leader", id, "applied_index", n.store.AppliedIndex())
				return nil
			}
			why = err
		} else {
			why = err
		}
		if time.Since(last) > 5*time.Second {
			n.log.Warn("waiting to catch up with the cluster leader", "leader", id, "err", why)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("starting cluster node: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close leaves nothing running: operator socket, RPC server, Raft, cluster port.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	if n.opSrv != nil {
		n.opSrv.Close()
	}
	if n.rpc != nil {
		n.rpc.Close()
	}
	if n.fwd != nil {
		n.fwd.Close()
	}
	var err error
	if n.store != nil {
		err = n.store.Close()
	}
	if n.mux != nil {
		n.mux.Close()
	}
	n.wg.Wait()
	return err
}

// Status is what /health and the operator API report about this node.
type Status struct {
	NodeID       string `json:"nodeId"`
	Region       string `json:"region"`
	Role         string `json:"role"` // leader, follower, candidate, non-voter, dr-replica, shutdown
	Leader       string `json:"leader,omitempty"`
	LeaderAddr   string `json:"leaderAddr,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// LastSnapshotIndex is the index of this node's newest snapshot (taken or installed).
	LastSnapshotIndex uint64 `json:"lastSnapshotIndex"`
	// LastContactMs is how long ago this follower last heard from the leader (0 on the leader).
	LastContactMs int64 `json:"lastContactMs"`
	// Sealed is true while this node cannot serve (sealed or shutting down).
	Sealed bool `json:"sealed"`
}

// Status reports this node's view.
func (n *Node) Status() Status {
	r := n.store.Raft()
	addr, id := r.LeaderWithID()
	st := Status{NodeID: n.cfg.NodeID, Region: n.cfg.Region, Role: lower(r.State().String()), Leader: string(id), LeaderAddr: string(addr),
		Term: r.CurrentTerm(), CommitIndex: r.CommitIndex(), AppliedIndex: n.store.AppliedIndex(), Sealed: !n.serving()}
	st.LastSnapshotIndex, _ = strconv.ParseUint(r.Stats()["last_snapshot_index"], 10, 64)
	if r.State() == raft.Follower {
		if lc := r.LastContact(); !lc.IsZero() {
			st.LastContactMs = time.Since(lc).Milliseconds()
		}
		if s, ok := n.selfServer(); ok && s.Suffrage != raft.Voter {
			st.Role = "non-voter"
			if n.cfg.NonVoter {
				st.Role = "dr-replica"
			}
		}
	}
	return st
}

func (n *Node) selfServer() (raft.Server, bool) {
	f := n.store.Raft().GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			return s, true
		}
	}
	return raft.Server{}, false
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
