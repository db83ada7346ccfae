package cluster

import (
	"context"
	"errors"
	"net/http"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/held"
)

// AuditOperation wraps an operator call so that it is audited where it executes, fail-closed.
// A call's answer is held and sent only once the record is written (503 otherwise); a
// streaming call (a snapshot download) is recorded before its first byte, since its outcome
// cannot wait for the stream, and refused with 503 when that record cannot be written. A nil
// recorder refuses every call: an operator call is never served unaudited. socketPath names
// the operator socket in the record.
func AuditOperation(rec audit.Recorder, socketPath, op string, streaming bool, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func() { refuseUnaudited(w, errAuditUnavailableOp.Error()) }
		if rec == nil {
			refuse()
			return
		}
		ctx := context.WithoutCancel(r.Context())
		record := func(status int) error { return rec.Record(ctx, operatorEvent(ctx, socketPath, op, status)) }
		if streaming {
			if record(http.StatusOK) != nil {
				refuse()
				return
			}
			fn(w, r)
			return
		}
		buf := held.New(nil)
		fn(buf, r)
		if record(buf.Status()) != nil {
			refuse()
			return
		}
		buf.Send(w)
	}
}

// operatorEvent is the audit event of an operator call (snapshot save and restore, cluster
// membership) or of a batch a member forwarded: the operator socket's file mode is its
// authentication, so the record names the socket (this node's, or the member's that passed the
// call on) and the local user that connected to it; a forwarded batch names the member.
func operatorEvent(ctx context.Context, socketPath, op string, status int) audit.Event {
	caller, ok := CallerFrom(ctx)
	if !ok {
		caller = Caller{Socket: true, UID: -1}
	}
	ip, uri := "operator-socket", "unix:"+socketPath
	if !caller.Socket {
		ip, uri = "cluster-member", "cluster:"+caller.Node
	} else if caller.Node != "" {
		uri = "unix:" + caller.Node + ":" + socketPath
	}
	return audit.Event{Operation: op, Status: status, CallerIP: ip, URI: uri,
		Description: "called by " + caller.String(), ClientInfo: caller.String()}
}

var errAuditUnavailableOp = errors.New("the operator call could not be recorded in the audit log; nothing was answered")

// refuseUnaudited answers 503 in place of an answer whose audit record could not be written.
func refuseUnaudited(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	opFail(w, http.StatusServiceUnavailable, errors.New(msg))
}
