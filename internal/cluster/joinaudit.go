package cluster

import (
	"context"
	"net"
	"net/http"
	"time"
)

// JoinAttempt is one decided join request, for the leader's audit log. It never carries the
// token: only who asked (node id and labels when well-formed, remote address) and the outcome.
type JoinAttempt struct {
	Time time.Time
	// NodeID, Region and ClusterAddr are what the request claimed; empty when malformed.
	NodeID      string
	Region      string
	ClusterAddr string
	NonVoter    bool
	// RemoteAddr is the client's address (a follower passes the original one on).
	RemoteAddr string
	// Status is the HTTP status answered: 200 admitted; 403 unknown, used or expired token;
	// 400 malformed; 409 node id in use; 5xx failed.
	Status int
}

// auditJoin hands the attempt to Options.AuditJoin once serveJoin has answered.
func (n *Node) auditJoin(r *http.Request, req *joinRequest, w *joinStatusWriter) {
	if n.opts.AuditJoin == nil {
		return
	}
	a := JoinAttempt{Time: time.Now().UTC(), NonVoter: req.NonVoter, RemoteAddr: r.RemoteAddr, Status: w.status}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	// Only well-formed claims reach the record: they are the requester's words, not checked.
	if nodeIDPattern(req.NodeID) {
		a.NodeID = req.NodeID
	}
	if nodeIDPattern(req.Region) {
		a.Region = req.Region
	}
	if _, _, err := net.SplitHostPort(req.Addr); err == nil && len(req.Addr) <= 256 {
		a.ClusterAddr = req.Addr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	n.opts.AuditJoin(ctx, a)
}

// joinStatusWriter remembers the status serveJoin answered.
type joinStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *joinStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}
