package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// A join is answered only once its attempt is on record; when the record cannot be written the
// answer is 503 whatever the decision was, so no node gets a certificate unaudited.
func TestServeJoin_AnswerWaitsForAudit(t *testing.T) {
	for _, c := range []struct {
		name       string
		audit      func(context.Context, JoinAttempt) error
		wantStatus int
		wantBody   string
		wantRecord int // the status the attempt was recorded with; 0 for none
	}{
		{"audited", func(context.Context, JoinAttempt) error { return nil }, 400, "JSON join request", 400},
		{"audit fails", func(context.Context, JoinAttempt) error { return errors.New("disk full") }, 503, "audit log", 400},
		{"no audit log yet", nil, 503, "audit log", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var recorded []JoinAttempt
			opts := Options{}
			if c.audit != nil {
				opts.AuditJoin = func(ctx context.Context, a JoinAttempt) error {
					recorded = append(recorded, a)
					return c.audit(ctx, a)
				}
			}
			n := &Node{opts: opts, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			rec := httptest.NewRecorder()
			n.serveJoin(rec, httptest.NewRequest(http.MethodPost, "/v1/join", strings.NewReader("not json")))
			if rec.Code != c.wantStatus || !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Fatalf("answer %d %s, want %d containing %q", rec.Code, rec.Body, c.wantStatus, c.wantBody)
			}
			if c.wantRecord == 0 {
				if len(recorded) != 0 {
					t.Fatalf("recorded %v, want nothing", recorded)
				}
				return
			}
			if len(recorded) != 1 || recorded[0].Status != c.wantRecord {
				t.Fatalf("recorded %+v, want one attempt with status %d", recorded, c.wantRecord)
			}
		})
	}
}

// Operator calls are answered only once audited; a stream is audited before its first byte.
func TestAuditOperation_FailClosed(t *testing.T) {
	failing := func(context.Context, string, int) error { return errors.New("disk full") }
	for _, c := range []struct {
		name       string
		audit      bool // false: no audit function at all
		failAudit  bool
		streaming  bool
		wantStatus int
		wantRan    bool
		wantRecord string
	}{
		{"buffered, audited", true, false, false, 409, true, "OpX 409"},
		{"buffered, audit fails", true, true, false, 503, true, "OpX 409"},
		{"stream, audited", true, false, true, 409, true, "OpX 200"},
		{"stream, audit fails", true, true, true, 503, false, "OpX 200"},
		{"no audit function", false, false, false, 503, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var record string
			var audit OperatorAuditFunc
			if c.audit {
				audit = func(ctx context.Context, op string, status int) error {
					record = op + " " + strconv.Itoa(status)
					if c.failAudit {
						return failing(ctx, op, status)
					}
					return nil
				}
			}
			ran := false
			h := AuditOperation(audit, "OpX", c.streaming, func(w http.ResponseWriter, _ *http.Request) {
				ran = true
				w.Header().Set("X-Answer", "yes")
				w.WriteHeader(409)
				w.Write([]byte("the answer"))
			})
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(http.MethodPost, "/v1/x", nil))
			if rec.Code != c.wantStatus || ran != c.wantRan || record != c.wantRecord {
				t.Fatalf("status %d ran %t record %q, want %d %t %q", rec.Code, ran, record, c.wantStatus, c.wantRan, c.wantRecord)
			}
			leaked := strings.Contains(rec.Body.String(), "the answer") || rec.Header().Get("X-Answer") != ""
			if (rec.Code == 503) == leaked {
				t.Fatalf("answer leaked=%t with status %d: %q", leaked, rec.Code, rec.Body)
			}
		})
	}
}
