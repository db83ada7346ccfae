package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// Request headers of the forwarding protocol.
const (
	// HeaderConsistency: "stale" lets any node answer a GET or HEAD from its own copy.
	HeaderConsistency = "X-Strongroom-Consistency"
	// headerForwardedFor carries the client's address from the follower to the leader; the leader
	// trusts it only on the cluster port (mutual TLS).
	headerForwardedFor = "X-Strongroom-Forwarded-For"
	// HeaderServedBy names the node that executed the request.
	HeaderServedBy = "X-Strongroom-Node"
	rpcPrefix      = "/_cluster/v1/"
)

// rpcHandler serves the cluster port's HTTP side: node-to-node calls under /_cluster/v1/ and
// every other path as an API request forwarded by a follower.
func (n *Node) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+rpcPrefix+"apply", n.serveApply)
	mux.HandleFunc("GET "+rpcPrefix+"status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, n.Status()) })
	mux.Handle(rpcPrefix+"op/", http.StripPrefix(rpcPrefix+"op", n.operatorHandler(false)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if fwd := r.Header.Get(headerForwardedFor); fwd != "" {
			r.RemoteAddr = fwd
		}
		r.Header.Del(headerForwardedFor)
		n.serveLeader(w, r, false)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
		mux.ServeHTTP(w, r)
	})
}

type tlsStateKey struct{}

type applyReply struct {
	Index uint64 `json:"index"`
	Code  string `json:"code,omitempty"` // "", "conflict", "not_leader", "error"
	Error string `json:"error,omitempty"`
}

func (n *Node) serveApply(w http.ResponseWriter, r *http.Request) {
	entry, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeJSON(w, 400, applyReply{Code: "error", Error: "reading entry"})
		return
	}
	idx, err := n.store.ApplyLeader(entry)
	rep := applyReply{Index: idx}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrConflict):
		rep.Code, rep.Error = "conflict", err.Error()
	case errors.Is(err, raftstore.ErrNotLeader):
		rep.Code, rep.Error = "not_leader", err.Error()
	default:
		rep.Code, rep.Error = "error", err.Error()
	}
	writeJSON(w, 200, rep)
}

// forwardEntry is raftstore's ForwardFunc over the cluster port.
func (n *Node) forwardEntry(ctx context.Context, leader raft.ServerAddress, _ raft.ServerID, entry []byte) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+string(leader)+rpcPrefix+"apply", bytes.NewReader(entry))
	if err != nil {
		return 0, err
	}
	resp, err := n.peers.Do(req)
	if err != nil {
		// Nothing was sent if dialing failed; otherwise the outcome is unknown.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, fmt.Errorf("forwarding batch to %s: %w (%w)", leader, raftstore.ErrNoLeader, err)
		}
		return 0, fmt.Errorf("forwarding batch to %s: %w", leader, err)
	}
	defer resp.Body.Close()
	var rep applyReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return 0, fmt.Errorf("forwarding batch to %s: reading reply: %w", leader, err)
	}
	switch rep.Code {
	case "":
		return rep.Index, nil
	case "conflict":
		return rep.Index, fmt.Errorf("%s: %w", rep.Error, store.ErrConflict)
	case "not_leader":
		return 0, raftstore.ErrNotLeader
	}
	return 0, fmt.Errorf("forwarded batch failed on %s: %s", leader, rep.Error)
}

func (n *Node) peerStatus(ctx context.Context, addr string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var st Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+rpcPrefix+"status", nil)
	resp, err := n.peers.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("status from %s: HTTP %d", addr, resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Handler puts cluster behaviour in front of the API handler: node-local paths are served here,
// stale reads locally, everything else by the leader (this node after a read barrier, or the
// leader through the cluster port).
func (n *Node) Handler(api http.Handler) http.Handler {
	n.api.Store(&api)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = pr.In.Context().Value(leaderKey{}).(string)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(headerForwardedFor, pr.In.RemoteAddr)
		},
		Transport: n.peers.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			n.log.Warn("forwarding to the leader failed", "err", err)
			unavailable(w, "The cluster leader could not be reached; retry.")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/health" && r.Method == http.MethodGet:
			n.serveHealth(w, r, api)
			return
		case r.URL.Path == "/sys/cluster/join" && r.Method == http.MethodPost:
			if n.store.IsLeader() {
				n.serveJoin(w, r)
				return
			}
		case localPath(r.URL.Path):
			api.ServeHTTP(w, r)
			return
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.EqualFold(r.Header.Get(HeaderConsistency), "stale"):
			w.Header().Set(HeaderServedBy, n.cfg.NodeID)
			api.ServeHTTP(w, r)
			return
		}
		if n.store.IsLeader() && n.serveLeader(w, r, true) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*n.cfg.ElectionTimeout+2*time.Second)
		addr, id, err := n.store.WaitLeader(ctx)
		cancel()
		if err != nil {
			unavailable(w, "The cluster has no leader; retry.")
			return
		}
		if string(id) == n.cfg.NodeID {
			if !n.serveLeader(w, r, true) {
				unavailable(w, "Leadership is changing; retry.")
			}
			return
		}
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), leaderKey{}, string(addr))))
	})
}

type leaderKey struct{}

// localPath lists the node-local routes: seal state belongs to each node.
func localPath(p string) bool {
	switch p {
	case "/sys/seal-status", "/sys/unseal", "/sys/init", "/sys/seal":
		return true
	}
	return false
}

// serveLeader executes r here after a read barrier. It returns false without writing when this
// node turned out not to lead and the caller may forward instead (canForward); a forwarded
// request is never forwarded again and gets 503.
func (n *Node) serveLeader(w http.ResponseWriter, r *http.Request, canForward bool) bool {
	api := n.api.Load()
	if api == nil {
		unavailable(w, "This node is starting; retry.")
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*n.cfg.ElectionTimeout+2*time.Second)
	err := n.store.ReadBarrier(ctx)
	cancel()
	if err != nil {
		if canForward && errors.Is(err, raftstore.ErrNotLeader) {
			return false
		}
		unavailable(w, "This node is not the cluster leader; retry.")
		return true
	}
	if r.URL.Path == "/sys/cluster/join" && r.Method == http.MethodPost {
		n.serveJoin(w, r)
		return true
	}
	w.Header().Set(HeaderServedBy, n.cfg.NodeID)
	(*api).ServeHTTP(w, r)
	return true
}

// serveHealth adds this node's cluster status to the API's health document.
func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request, api http.Handler) {
	rec := &recorder{header: http.Header{}, status: 200}
	api.ServeHTTP(rec, r)
	doc := map[string]any{}
	if err := json.Unmarshal(rec.body.Bytes(), &doc); err != nil {
		doc = map[string]any{"status": http.StatusText(rec.status)}
	}
	doc["cluster"] = n.Status()
	for k, v := range rec.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	writeJSON(w, rec.status, doc)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"code": "ServiceUnavailable", "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
