package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The operator API is served on <data_dir>/operator.sock (mode 0600): whoever may read the data
// folder may run `strongroom operator raft ...` on that node. Calls that only the leader can
// make are passed to it over the cluster port.
//
//	GET  /v1/status        this node's Status
//	GET  /v1/peers         []Peer
//	GET  /v1/autopilot     AutopilotState
//	POST /v1/join-token    {"ttl": "1h"} -> {"token", "expires"}
//	POST /v1/remove-peer   {"id": "node2"}
//	POST /v1/step-down
//	GET  /v1/snapshot      an encrypted snapshot file (snapshot.go)
//	POST /v1/snapshot      restore the cluster from a snapshot file
const socketName = "operator.sock"

// SocketPath is where a node's operator socket lives.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, socketName) }

// Peer is one member as list-peers shows it.
type Peer struct {
	ID        string `json:"id"`
	Address   string `json:"address"`
	Suffrage  string `json:"suffrage"` // voter, nonvoter
	Region    string `json:"region"`
	DRReplica bool   `json:"drReplica"`
	Leader    bool   `json:"leader"`
}

func (n *Node) startOperatorSocket() error {
	path := SocketPath(n.opts.DataDir)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on operator socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("securing operator socket: %w", err)
	}
	n.opSrv = &http.Server{Handler: n.operatorHandler(true), ReadHeaderTimeout: 10 * time.Second,
		ConnContext: SocketConnContext}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); _ = n.opSrv.Serve(ln) }()
	return nil
}

// headerSocketUID carries, from a member passing an operator-socket call on to the leader, the
// local user that made it; the leader trusts it only from a member (node-to-node protocol).
const headerSocketUID = "X-Strongroom-Operator-Uid"

// socketCaller names a call passed on by a member's operator socket as that socket's user.
func socketCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(headerSocketUID); v != "" {
			uid, err := strconv.Atoi(v)
			if err != nil {
				uid = -1
			}
			c, _ := CallerFrom(r.Context())
			c.Socket, c.UID = true, uid
			r = r.WithContext(withCaller(r.Context(), c))
		}
		h.ServeHTTP(w, r)
	})
}

// operatorHandler serves the operator API; local (the socket) may pass leader-only calls on.
func (n *Node) operatorHandler(local bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, n.Status()) })
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		peers, err := n.Peers(r.Context())
		if err != nil {
			opFail(w, 503, err)
			return
		}
		writeJSON(w, 200, peers)
	})
	mux.HandleFunc("POST /v1/join-token", n.audited("OperatorRaftJoinToken", false, n.serveJoinToken))
	mux.HandleFunc("POST /v1/remove-peer", n.leaderOnly(local, "OperatorRaftRemovePeer", false, n.serveRemovePeer))
	mux.HandleFunc("POST /v1/step-down", n.leaderOnly(local, "OperatorRaftStepDown", false, n.serveStepDown))
	mux.HandleFunc("GET /v1/snapshot", n.leaderOnly(local, "OperatorSnapshotSave", true, n.serveSnapshotSave))
	mux.HandleFunc("POST /v1/snapshot", n.leaderOnly(local, "OperatorSnapshotRestore", false, n.serveSnapshotRestore))
	mux.HandleFunc("GET /v1/autopilot", n.leaderOnly(local, "", false, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, n.autopilotState())
	}))
	if !local {
		return socketCaller(mux)
	}
	return mux
}

// audited runs fn audited as operation op where it executes (AuditOperation).
func (n *Node) audited(op string, streaming bool, fn http.HandlerFunc) http.HandlerFunc {
	return AuditOperation(n.opts.Audit, SocketPath(n.opts.DataDir), op, streaming, fn)
}

// leaderOnly runs fn on the leader, audited there when op is set. On a follower, a call from
// the local socket is passed on to the leader, naming the socket's user; any other is refused.
func (n *Node) leaderOnly(local bool, op string, streaming bool, fn http.HandlerFunc) http.HandlerFunc {
	if op != "" {
		fn = n.audited(op, streaming, fn)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if n.store.IsLeader() {
			fn(w, r)
			return
		}
		addr, _ := n.store.Raft().LeaderWithID()
		if !local || addr == "" {
			opFail(w, 503, errors.New("this node is not the leader and no leader is known"))
			return
		}
		p := &httputil.ReverseProxy{Transport: n.peers.Transport, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.URL.Path = "https", string(addr), rpcPrefix+"op"+pr.In.URL.Path
			// The leader audits the call as this node's socket user (see socketCaller).
			if c, ok := CallerFrom(pr.In.Context()); ok {
				pr.Out.Header.Set(headerSocketUID, strconv.Itoa(c.UID))
			}
		}}
		p.ServeHTTP(w, r)
	}
}

func (n *Node) serveJoinToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TTL string `json:"ttl"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req)
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			opFail(w, 400, fmt.Errorf("ttl: %w", err))
			return
		}
		ttl = d
	}
	tok, exp, err := n.CreateJoinToken(r.Context(), ttl)
	if err != nil {
		opFail(w, 400, err)
		return
	}
	writeJSON(w, 200, map[string]any{"token": tok, "expires": exp})
}

func (n *Node) serveRemovePeer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.ID == "" {
		opFail(w, 400, errors.New("the body must be {\"id\": \"<node id>\"}"))
		return
	}
	if _, ok := n.server(req.ID); !ok {
		opFail(w, 404, fmt.Errorf("no member %q", req.ID))
		return
	}
	if err := n.store.Raft().RemoveServer(raft.ServerID(req.ID), 0, 10*time.Second).Error(); err != nil {
		opFail(w, 503, fmt.Errorf("removing %s: %w", req.ID, err))
		return
	}
	n.log.Info("removed cluster member", "node_id", req.ID)
	writeJSON(w, 200, map[string]any{"removed": req.ID})
}

func (n *Node) serveStepDown(w http.ResponseWriter, _ *http.Request) {
	if err := n.store.Raft().LeadershipTransfer().Error(); err != nil {
		opFail(w, 503, fmt.Errorf("transferring leadership: %w", err))
		return
	}
	_, id := n.store.Raft().LeaderWithID()
	writeJSON(w, 200, map[string]any{"steppedDown": n.cfg.NodeID, "leader": string(id)})
}

func opFail(w http.ResponseWriter, status int, err error) {
	writeEnvelope(w, status, http.StatusText(status), err.Error())
}

// Peers lists the members with their labels.
func (n *Node) Peers(ctx context.Context) ([]Peer, error) {
	f := n.store.Raft().GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	_, leader := n.store.Raft().LeaderWithID()
	var out []Peer
	for _, s := range f.Configuration().Servers {
		m := n.nodeMeta(ctx, string(s.ID))
		suf := "voter"
		if s.Suffrage != raft.Voter {
			suf = "nonvoter"
		}
		out = append(out, Peer{ID: string(s.ID), Address: string(s.Address), Suffrage: suf, Region: m.Region, DRReplica: m.NonVoter, Leader: s.ID == leader})
	}
	return out, nil
}

// ServerHealth is autopilot's view of one member.
type ServerHealth struct {
	ID            string    `json:"id"`
	Suffrage      string    `json:"suffrage"`
	Healthy       bool      `json:"healthy"`
	AppliedIndex  uint64    `json:"appliedIndex"`
	LastContactMs int64     `json:"lastContactMs"`
	StableSince   time.Time `json:"stableSince,omitzero"`
	// UnhealthySince is when the member was first seen unhealthy in its current spell.
	UnhealthySince time.Time `json:"unhealthySince,omitzero"`
	Error          string    `json:"error,omitempty"`
}

// AutopilotState is the leader's health view (operator raft autopilot state).
type AutopilotState struct {
	Leader       string         `json:"leader"`
	CommitIndex  uint64         `json:"commitIndex"`
	PromoteAfter string         `json:"promoteAfter"`
	Servers      []ServerHealth `json:"servers"`
}

// maxTrailing is how far behind the leader's commit index a healthy member may be.
const maxTrailing = 1000

type pilot struct {
	mu     sync.Mutex
	stable map[string]time.Time
	sick   map[string]time.Time // unhealthy since, for dead-server cleanup
	last   AutopilotState
}

func (n *Node) autopilotState() AutopilotState {
	p := n.pilotState()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (n *Node) pilotState() *pilot { return &n.pilot }

// autopilot runs on every node and acts only while this node leads: it checks each member's
// health over the cluster port and promotes a non-voter (never a DR replica) to voter once it has
// been healthy for PromoteAfter.
func (n *Node) autopilot() {
	defer n.wg.Done()
	p := n.pilotState()
	tick := time.NewTicker(max(n.cfg.PromoteAfter/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if !n.store.IsLeader() {
			p.mu.Lock()
			clear(p.stable)
			clear(p.sick)
			p.mu.Unlock()
			continue
		}
		n.pilotRound(p)
	}
}

func (n *Node) pilotRound(p *pilot) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := n.store.Raft()
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	commit := r.CommitIndex()
	state := AutopilotState{Leader: n.cfg.NodeID, CommitIndex: commit, PromoteAfter: n.cfg.PromoteAfter.String()}
	now := time.Now()
	for _, s := range f.Configuration().Servers {
		h := ServerHealth{ID: string(s.ID), Suffrage: "voter"}
		if s.Suffrage != raft.Voter {
			h.Suffrage = "nonvoter"
		}
		if string(s.ID) == n.cfg.NodeID {
			h.Healthy, h.AppliedIndex = true, n.store.AppliedIndex()
		} else if st, err := n.peerStatus(ctx, string(s.Address)); err != nil {
			h.Error = err.Error()
		} else {
			h.AppliedIndex, h.LastContactMs = st.AppliedIndex, st.LastContactMs
			h.Healthy = st.AppliedIndex+maxTrailing >= commit && st.LastContactMs < 10*n.cfg.ElectionTimeout.Milliseconds()
		}
		p.mu.Lock()
		if !h.Healthy {
			delete(p.stable, h.ID)
			if _, ok := p.sick[h.ID]; !ok && p.sick != nil {
				p.sick[h.ID] = now
			}
		} else {
			delete(p.sick, h.ID)
			if _, ok := p.stable[h.ID]; !ok && p.stable != nil {
				p.stable[h.ID] = now
			}
		}
		h.StableSince, h.UnhealthySince = p.stable[h.ID], p.sick[h.ID]
		p.mu.Unlock()
		if s.Suffrage == raft.Nonvoter && h.Healthy && now.Sub(h.StableSince) >= n.cfg.PromoteAfter && !n.nodeMeta(ctx, h.ID).NonVoter {
			if err := r.AddVoter(s.ID, s.Address, 0, 10*time.Second).Error(); err != nil {
				n.log.Warn("autopilot: promoting failed", "node_id", h.ID, "err", err)
			} else {
				n.log.Info("autopilot: promoted to voter", "node_id", h.ID)
				h.Suffrage = "voter"
			}
		}
		state.Servers = append(state.Servers, h)
	}
	n.cleanupDead(ctx, f.Configuration().Servers, state.Servers, now)
	p.mu.Lock()
	p.last = state
	p.mu.Unlock()
}

// cleanupDead removes at most one member per round that has been unhealthy for DeadServerAfter,
// never this node, never a DR replica, and never when fewer than MinQuorum voters would remain.
func (n *Node) cleanupDead(ctx context.Context, servers []raft.Server, health []ServerHealth, now time.Time) {
	if n.cfg.DeadServerAfter <= 0 {
		return
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for i, h := range health {
		s := servers[i]
		if h.Healthy || h.ID == n.cfg.NodeID || h.UnhealthySince.IsZero() || now.Sub(h.UnhealthySince) < n.cfg.DeadServerAfter {
			continue
		}
		if s.Suffrage == raft.Voter && voters-1 < n.cfg.MinQuorum {
			continue
		}
		if n.nodeMeta(ctx, h.ID).NonVoter {
			continue // DR replicas are removed by an operator only
		}
		if err := n.store.Raft().RemoveServer(s.ID, 0, 10*time.Second).Error(); err != nil {
			n.log.Warn("autopilot: removing dead server failed", "node_id", h.ID, "err", err)
			return
		}
		n.log.Info("autopilot: removed dead server", "node_id", h.ID, "unhealthy_for", now.Sub(h.UnhealthySince).String())
		p := n.pilotState()
		p.mu.Lock()
		delete(p.sick, h.ID)
		p.mu.Unlock()
		return
	}
}
