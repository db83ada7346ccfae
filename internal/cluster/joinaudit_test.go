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

	"github.com/strongroom/strongroom/internal/audit"
)

// fakeRecorder keeps the events it is given and fails with err.
type fakeRecorder struct {
	events []audit.Event
	err    error
}

func (f *fakeRecorder) Record(_ context.Context, e audit.Event) error {
	f.events = append(f.events, e)
	return f.err
}

func (f *fakeRecorder) Healthy() bool { return f.err == nil }

// A join is answered only once its attempt is on record; when the record cannot be written the
// answer is 503 whatever the decision was, so no node gets a certificate unaudited.
func TestServeJoin_AnswerWaitsForAudit(t *testing.T) {
	for _, c := range []struct {
		name       string
		audit      *fakeRecorder
		wantStatus int
		wantBody   string
		wantRecord int // the status the attempt was recorded with; 0 for none
	}{
		{"audited", &fakeRecorder{}, 400, "JSON join request", 400},
		{"audit fails", &fakeRecorder{err: errors.New("disk full")}, 503, "audit log", 400},
		{"no audit log yet", nil, 503, "audit log", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var recorded []audit.Event
			opts := Options{PublicURL: "https://n1:8443"}
			if c.audit != nil {
				opts.Audit = c.audit
			}
			n := &Node{opts: opts, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			rec := httptest.NewRecorder()
			n.serveJoin(rec, httptest.NewRequest(http.MethodPost, "/v1/join", strings.NewReader("not json")))
			if rec.Code != c.wantStatus || !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Fatalf("answer %d %s, want %d containing %q", rec.Code, rec.Body, c.wantStatus, c.wantBody)
			}
			if c.audit != nil {
				recorded = c.audit.events
			}
			if c.wantRecord == 0 {
				if len(recorded) != 0 {
					t.Fatalf("recorded %v, want nothing", recorded)
				}
				return
			}
			if len(recorded) != 1 || recorded[0].Status != c.wantRecord || recorded[0].Operation != "ClusterJoin" ||
				recorded[0].URI != "https://n1:8443/sys/cluster/join" || !strings.Contains(recorded[0].Description, "refused: malformed") {
				t.Fatalf("recorded %+v, want one ClusterJoin attempt with status %d", recorded, c.wantRecord)
			}
		})
	}
}

// Operator calls are answered only once audited; a stream is audited before its first byte.
func TestAuditOperation_FailClosed(t *testing.T) {
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
			var recorder audit.Recorder
			fake := &fakeRecorder{}
			if c.failAudit {
				fake.err = errors.New("disk full")
			}
			if c.audit {
				recorder = fake
			}
			ran := false
			h := AuditOperation(recorder, "/data/operator.sock", "OpX", c.streaming, func(w http.ResponseWriter, _ *http.Request) {
				ran = true
				w.Header().Set("X-Answer", "yes")
				w.WriteHeader(409)
				w.Write([]byte("the answer"))
			})
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(http.MethodPost, "/v1/x", nil))
			record := ""
			if len(fake.events) == 1 {
				e := fake.events[0]
				record = e.Operation + " " + strconv.Itoa(e.Status)
				if e.URI != "unix:/data/operator.sock" || e.CallerIP != "operator-socket" {
					t.Errorf("event names %q %q, want the operator socket", e.URI, e.CallerIP)
				}
			}
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
