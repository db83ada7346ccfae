package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/held"
)

// JoinAttempt is one decided join request, for the leader's audit log (joinEvent). It never carries the
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

// auditJoin records the attempt once serveJoin has decided it, before the answer leaves: the
// held answer is sent only when the attempt is on record, and a 503 replaces it otherwise
// (fail-closed: no node gets its certificate unaudited).
func (n *Node) auditJoin(w http.ResponseWriter, r *http.Request, req *joinRequest, buf *held.Answer) {
	a := JoinAttempt{Time: time.Now().UTC(), NonVoter: req.NonVoter, RemoteAddr: r.RemoteAddr, Status: buf.Status()}
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
	if n.opts.Audit != nil {
		err = n.opts.Audit.Record(ctx, joinEvent(a, n.opts.PublicURL))
	}
	if err != nil {
		n.log.Error("join answered 503: the attempt could not be audited", "node_id", a.NodeID, "status", a.Status, "err", err)
		refuseUnaudited(w, "The join attempt could not be recorded in the audit log; retry with a new token.")
		return
	}
	buf.Send(w)
}

// joinEvent is the audit event of a join attempt: the claimed node id, labels and address, the
// caller's address and the outcome; never the token.
func joinEvent(a JoinAttempt, publicURL string) audit.Event {
	ip, _, err := net.SplitHostPort(a.RemoteAddr)
	if err != nil {
		ip = ""
	}
	desc := "admitted as a non-voter"
	switch {
	case a.Status == http.StatusForbidden:
		desc = "refused: the join token is unknown, used or expired"
	case a.Status == http.StatusConflict:
		desc = "refused: a member with this node id exists"
	case a.Status >= 500:
		desc = "failed"
	case a.Status >= 400:
		desc = "refused: malformed join request"
	}
	return audit.Event{Time: a.Time, Operation: "ClusterJoin", Status: a.Status, CallerIP: ip,
		URI: publicURL + "/sys/cluster/join", ObjectID: a.NodeID,
		Description: fmt.Sprintf("node %q region %q cluster address %q dr replica %t: %s", a.NodeID, a.Region, a.ClusterAddr, a.NonVoter, desc)}
}

// errAuditUnavailable is the answer while no audit log is attached (during start-up).
var errAuditUnavailable = errors.New("audit log not open")
