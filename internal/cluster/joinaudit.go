package cluster

import (
	"context"
	"errors"
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

// auditJoin hands the attempt to Options.AuditJoin once serveJoin has decided it, before the
// answer leaves: the buffered answer is sent only when the attempt is on record, and a 503
// replaces it otherwise (fail-closed: no node gets its certificate unaudited).
func (n *Node) auditJoin(w http.ResponseWriter, r *http.Request, req *joinRequest, buf *answerBuffer) {
	a := JoinAttempt{Time: time.Now().UTC(), NonVoter: req.NonVoter, RemoteAddr: r.RemoteAddr, Status: buf.status}
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
	var err error = errAuditUnavailable
	if n.opts.AuditJoin != nil {
		err = n.opts.AuditJoin(ctx, a)
	}
	if err != nil {
		n.log.Error("join answered 503: the attempt could not be audited", "node_id", a.NodeID, "status", a.Status, "err", err)
		refuseUnaudited(w, "The join attempt could not be recorded in the audit log; retry with a new token.")
		return
	}
	buf.sendTo(w)
}

// errAuditUnavailable is the answer while no audit log is attached (during start-up).
var errAuditUnavailable = errors.New("audit log not open")
