package cluster

import (
	"bytes"
	"context"
	"errors"
	"net/http"
)

// OperatorAuditFunc writes one audit record for an operator call: its operation name and the
// status it was answered with. An error means the record is not written.
type OperatorAuditFunc func(ctx context.Context, op string, status int) error

// AuditOperation wraps an operator call so that it is audited where it executes, fail-closed.
// A call's answer is buffered and sent only once the record is written (503 otherwise); a
// streaming call (a snapshot download) is recorded before its first byte, since its outcome
// cannot wait for the stream, and refused with 503 when that record cannot be written. A nil
// audit refuses every call: an operator call is never served unaudited.
func AuditOperation(audit OperatorAuditFunc, op string, streaming bool, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func() { refuseUnaudited(w, errAuditUnavailableOp.Error()) }
		ctx := context.WithoutCancel(r.Context())
		if audit == nil {
			refuse()
			return
		}
		if streaming {
			if audit(ctx, op, http.StatusOK) != nil {
				refuse()
				return
			}
			fn(w, r)
			return
		}
		buf := newAnswerBuffer()
		fn(buf, r)
		if audit(ctx, op, buf.code()) != nil {
			refuse()
			return
		}
		buf.sendTo(w)
	}
}

var errAuditUnavailableOp = errors.New("the operator call could not be recorded in the audit log; nothing was answered")

// refuseUnaudited answers 503 in place of an answer whose audit record could not be written.
func refuseUnaudited(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	opFail(w, http.StatusServiceUnavailable, errors.New(msg))
}

// answerBuffer holds a handler's answer until its audit record is written.
type answerBuffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newAnswerBuffer() *answerBuffer { return &answerBuffer{header: http.Header{}} }

func (b *answerBuffer) Header() http.Header { return b.header }

func (b *answerBuffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *answerBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// code is the status the handler answered (200 when it wrote nothing).
func (b *answerBuffer) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// sendTo writes the buffered answer to w.
func (b *answerBuffer) sendTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code())
	w.Write(b.body.Bytes())
}
