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
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

const rpcPrefix = "/_cluster/v1/"

// rpcHandler serves the cluster port's node-to-node protocol: forwarded batches, status,
// operator calls passed on by a member's operator socket, root-key staging. Every request must
// come from a current member (memberOnly); nothing else is routed here, API requests included.
func (n *Node) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+rpcPrefix+"apply", n.serveApply)
	mux.HandleFunc("GET "+rpcPrefix+"status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, n.Status()) })
	mux.Handle(rpcPrefix+"op/", http.StripPrefix(rpcPrefix+"op", n.operatorHandler(false)))
	n.registerRootKeyRPC(mux)
	return n.memberOnly(mux)
}

// memberOnly admits a request only while the certificate of the connection that carries it
// belongs to a current member: a connection accepted before its node was removed is refused.
func (n *Node) memberOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
		if !ok || len(st.PeerCertificates) == 0 {
			opFail(w, http.StatusForbidden, errors.New("cluster calls need a member certificate"))
			return
		}
		r.TLS = st
		id, err := n.memberID(st.PeerCertificates[0])
		if err != nil {
			opFail(w, http.StatusForbidden, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(withPeer(r.Context(), id)))
	})
}

type tlsStateKey struct{}

type applyReply struct {
	Index uint64 `json:"index"`
	Code  string `json:"code,omitempty"` // "", "conflict", "not_leader", "error"
	Error string `json:"error,omitempty"`
}

// serveApply commits a batch a member wrote outside the API (background work on a follower:
// API requests are executed on the leader). It is audited here, with the member as the
// caller, before it is applied; a batch that cannot be recorded is refused.
func (n *Node) serveApply(w http.ResponseWriter, r *http.Request) {
	entry, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeJSON(w, 400, applyReply{Code: "error", Error: "reading entry"})
		return
	}
	if ctx := context.WithoutCancel(r.Context()); n.opts.Audit == nil ||
		n.opts.Audit.Record(ctx, operatorEvent(ctx, SocketPath(n.opts.DataDir), "ClusterForwardedBatch", http.StatusOK)) != nil {
		refuseUnaudited(w, "the forwarded batch could not be recorded in the audit log; nothing was applied")
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
	req.Header.Set("Content-Type", "application/octet-stream")
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
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("forwarding batch to %s: HTTP %d", leader, resp.StatusCode)
	}
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
