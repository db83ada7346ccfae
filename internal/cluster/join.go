package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/strongroom/strongroom/internal/held"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
)

// Records the cluster keeps in the replicated store (unsealed: they hold no secrets).
//
//	sys/cluster/join/<hex SHA-256 of token>  {"expires": RFC 3339}   one-time join token
//	sys/cluster/node/<node id>               {"region", "nonVoter", "certSha256"}  node labels, certificate pin
const (
	joinPrefix = "sys/cluster/join/"
	nodePrefix = "sys/cluster/node/"
	// tokenPrefix starts every join token, so a token pasted in the wrong place is recognizable.
	tokenPrefix = "srjoin1."
)

type tokenRecord struct {
	Expires time.Time `json:"expires"`
}

type nodeMeta struct {
	Region   string `json:"region"`
	NonVoter bool   `json:"nonVoter,omitempty"`
	// CertSHA256 pins the certificate the node joined with, CA the cluster CA that issued it
	// (see peerid.go): a record restored from another cluster's snapshot pins nothing here.
	CertSHA256 string `json:"certSha256,omitempty"`
	CA         string `json:"caSha256,omitempty"`
}

func parseNodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	err := json.Unmarshal(b, &m)
	return m, err
}

// CreateJoinToken makes a one-time join token valid for ttl.
func (n *Node) CreateJoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("creating join token: ttl must be between 1s and 168h")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	exp := time.Now().Add(ttl).UTC().Truncate(time.Second)
	rec, _ := json.Marshal(tokenRecord{Expires: exp})
	if err := n.store.Apply(ctx, []store.Op{store.Put(tokenKey(token), rec)}); err != nil {
		return "", time.Time{}, fmt.Errorf("creating join token: %w", err)
	}
	return token, exp, nil
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return joinPrefix + hex.EncodeToString(sum[:])
}

// consumeToken deletes the token's record if it exists and has not expired; the conditional
// delete makes a token usable once even when two joins race on different nodes.
func (n *Node) consumeToken(ctx context.Context, token string) error {
	key := tokenKey(token)
	raw, err := n.store.Get(ctx, key)
	if err != nil {
		return errBadToken
	}
	var rec tokenRecord
	if json.Unmarshal(raw, &rec) != nil {
		return errBadToken
	}
	if err := n.store.Apply(ctx, []store.Op{store.RequireEqual(key, raw), store.Delete(key)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errBadToken
		}
		return err
	}
	if time.Now().After(rec.Expires) {
		return errBadToken
	}
	return nil
}

var errBadToken = errors.New("the join token is unknown, used or expired")

func (n *Node) putNodeMeta(ctx context.Context, id string, m nodeMeta) error {
	b, _ := json.Marshal(m)
	if err := n.store.Apply(ctx, []store.Op{store.Put(nodePrefix+id, b)}); err != nil {
		return fmt.Errorf("recording node %s: %w", id, err)
	}
	return nil
}

func (n *Node) nodeMeta(ctx context.Context, id string) nodeMeta {
	var m nodeMeta
	if b, err := n.store.Get(ctx, nodePrefix+id); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// joinRequest is POST /sys/cluster/join on any member's API port.
type joinRequest struct {
	Token    string `json:"token"`
	NodeID   string `json:"nodeId"`
	Addr     string `json:"clusterAddr"`
	Region   string `json:"region"`
	NonVoter bool   `json:"nonVoter"`
	CSR      string `json:"csr"`
}

type joinResponse struct {
	CA string `json:"ca"`
	// CAKey is set only by leaders from before cakey.go; the key then moves into the store.
	CAKey  string `json:"caKey,omitempty"`
	Cert   string `json:"cert"`
	Leader string `json:"leader"`
}

// serveJoin admits a node (on the leader): token, then certificate, then a non-voting member.
func (n *Node) serveJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	buf := held.New(nil)
	defer n.auditJoin(w, r, &req, buf)
	w = buf
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		joinFail(w, 400, "The body must be a JSON join request.")
		return
	}
	if !nodeIDPattern(req.NodeID) || !nodeIDPattern(req.Region) {
		joinFail(w, 400, "nodeId and region must be 1-64 letters, digits, '.', '_' or '-'.")
		return
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		joinFail(w, 400, "clusterAddr must be host:port.")
		return
	}
	csr, err := parseCSR([]byte(req.CSR))
	if err != nil || csr.Subject.CommonName != req.NodeID {
		joinFail(w, 400, "csr must be a PEM certificate request whose common name is the node id.")
		return
	}
	if err := n.consumeToken(r.Context(), req.Token); err != nil {
		n.log.Warn("join refused", "node_id", req.NodeID, "remote", r.RemoteAddr, "err", err)
		joinFail(w, 403, "The join token is unknown, used or expired.")
		return
	}
	if s, ok := n.server(req.NodeID); ok {
		n.log.Warn("join refused: node id in use", "node_id", req.NodeID, "address", s.Address)
		joinFail(w, 409, "A member with this node id exists; remove it first (strongroom operator raft remove-peer).")
		return
	}
	caKey, err := n.caSigner(r.Context())
	if err != nil {
		n.log.Error("join: the cluster CA key is not available", "err", err)
		joinFail(w, 503, "The cluster CA key is not available on the leader; retry with a new token.")
		return
	}
	cert, err := signNode(n.mat.caCert, caKey, req.NodeID, csr.PublicKey)
	if err != nil {
		joinFail(w, 500, "Signing the node certificate failed.")
		return
	}
	certDER, _ := pem.Decode(cert)
	if err := n.putNodeMeta(r.Context(), req.NodeID, nodeMeta{Region: req.Region, NonVoter: req.NonVoter, CertSHA256: certPin(certDER.Bytes), CA: certPin(n.mat.caCert.Raw)}); err != nil {
		joinFail(w, 503, "Recording the node failed; retry with a new token.")
		return
	}
	// Every node joins as a non-voter; autopilot promotes it once it has caught up.
	if err := n.store.Raft().AddNonvoter(raft.ServerID(req.NodeID), raft.ServerAddress(req.Addr), 0, 10*time.Second).Error(); err != nil {
		joinFail(w, 503, "Adding the node to the cluster failed; retry with a new token.")
		return
	}
	n.log.Info("node joined as a non-voter", "node_id", req.NodeID, "cluster_addr", req.Addr, "region", req.Region, "dr_replica", req.NonVoter)
	writeJSON(w, 200, joinResponse{CA: string(n.mat.caPEM), Cert: string(cert), Leader: n.cfg.NodeID})
}

func joinFail(w http.ResponseWriter, status int, msg string) {
	writeEnvelope(w, status, http.StatusText(status), msg)
}

func nodeIDPattern(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (n *Node) server(id string) (raft.Server, bool) {
	f := n.store.Raft().GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// JoinOptions describe a node asking to join.
type JoinOptions struct {
	DataDir   string // the new node's data folder; cluster/ is written in it
	LeaderURL string // https origin of any member's API
	// LeaderCA is the PEM CA for that API certificate; nil means the system roots.
	LeaderCA []byte
	Token    string
	NodeID   string
	Addr     string // the new node's cluster address
	Region   string
	NonVoter bool
}

// Join asks a member to admit a node and writes the node's cluster folder. The node then starts
// with `strongroom server --cluster-addr ... --node-id ...` and catches up from the leader.
func Join(ctx context.Context, o JoinOptions) error {
	dir := filepath.Join(o.DataDir, "cluster")
	if _, err := os.Stat(filepath.Join(dir, "node.json")); err == nil {
		return fmt.Errorf("joining: %s already holds cluster membership", dir)
	}
	if o.Region == "" {
		o.Region = "default"
	}
	key, csr, err := newNodeKey(o.NodeID)
	if err != nil {
		return fmt.Errorf("joining: %w", err)
	}
	body, _ := json.Marshal(joinRequest{Token: strings.TrimSpace(o.Token), NodeID: o.NodeID, Addr: o.Addr, Region: o.Region, NonVoter: o.NonVoter, CSR: string(csr)})
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(o.LeaderCA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.LeaderCA) {
			return fmt.Errorf("joining: the leader CA file holds no certificate")
		}
		tcfg.RootCAs = pool
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.LeaderURL, "/")+"/sys/cluster/join", strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("joining: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("joining through %s: %w", o.LeaderURL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("joining through %s: HTTP %d: %s", o.LeaderURL, resp.StatusCode, e.Error.Message)
	}
	var jr joinResponse
	if err := json.Unmarshal(raw, &jr); err != nil {
		return fmt.Errorf("joining: reading the reply: %w", err)
	}
	cert, err := parseCert([]byte(jr.Cert))
	if err != nil || certNodeID(cert) != o.NodeID {
		return fmt.Errorf("joining: the reply holds no certificate for %q", o.NodeID)
	}
	nk, err := keyPEM(key)
	if err != nil {
		return err
	}
	var caKey []byte
	if jr.CAKey != "" {
		caKey = []byte(jr.CAKey)
	}
	return writeMaterial(dir, []byte(jr.CA), caKey, []byte(jr.Cert), nk, nodeDoc{ID: o.NodeID, Region: o.Region, Addr: o.Addr})
}

// retryJoin runs the configured retry_join entries until one admits this node or ctx ends.
func (n *Node) retryJoin(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		for _, rj := range n.cfg.RetryJoin {
			token, err := os.ReadFile(rj.JoinTokenFile)
			if err != nil {
				return fmt.Errorf("reading cluster.retry_join join_token_file: %w", err)
			}
			var ca []byte
			if rj.LeaderCACertFile != "" {
				if ca, err = os.ReadFile(rj.LeaderCACertFile); err != nil {
					return fmt.Errorf("reading cluster.retry_join leader_ca_cert_file: %w", err)
				}
			}
			err = Join(ctx, JoinOptions{DataDir: n.opts.DataDir, LeaderURL: rj.LeaderAPIAddr, LeaderCA: ca, Token: string(token),
				NodeID: n.cfg.NodeID, Addr: n.cfg.AdvertiseAddr(), Region: n.cfg.Region, NonVoter: n.cfg.NonVoter})
			if err == nil {
				n.log.Info("joined the cluster", "through", rj.LeaderAPIAddr)
				return nil
			}
			n.log.Warn("join attempt failed", "through", rj.LeaderAPIAddr, "attempt", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joining: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
