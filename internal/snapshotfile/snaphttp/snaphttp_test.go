package snaphttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/snapshotfile"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// failBody records the status and error a Fail was given, as the answer's body.
func failBody(w http.ResponseWriter, status int, err error) {
	w.WriteHeader(status)
	fmt.Fprintf(w, "fail %d: %v", status, err)
}

func TestSave(t *testing.T) {
	cases := []struct {
		name   string
		save   func(context.Context, io.Writer) error
		status int
		body   string
		ctype  string
		aborts bool
	}{
		{"whole file", func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "FILE"); return err }, 200, "FILE", "application/octet-stream", false},
		{"sealed before the first byte", func(context.Context, io.Writer) error { return Sealed("the node is sealed") }, 503, "fail 503: the node is sealed", "", false},
		{"failure before the first byte", func(context.Context, io.Writer) error { return errors.New("no leader") }, 503, "fail 503: no leader", "", false},
		{"failure after the first byte", func(_ context.Context, w io.Writer) error { io.WriteString(w, "FI"); return errors.New("disk") }, 0, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			aborted := func() (aborted bool) {
				defer func() {
					if p := recover(); p != nil {
						if p != http.ErrAbortHandler {
							panic(p)
						}
						aborted = true
					}
				}()
				Save(rec, httptest.NewRequest("GET", "/v1/snapshot", nil), tc.save, failBody, quiet)
				return false
			}()
			if aborted != tc.aborts {
				t.Fatalf("aborted = %v, want %v", aborted, tc.aborts)
			}
			if tc.aborts {
				return
			}
			if rec.Code != tc.status || rec.Body.String() != tc.body || rec.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("answer %d %q (Content-Type %q), want %d %q (%q)", rec.Code, rec.Body, rec.Header().Get("Content-Type"), tc.status, tc.body, tc.ctype)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"refused file", fmt.Errorf("header: %w", snapshotfile.ErrRefused), 400, "fail 400: header: " + snapshotfile.ErrRefused.Error()},
		{"sealed", Sealed("the server is sealed"), 503, "fail 503: the server is sealed"},
		{"other failure", errors.New("disk full"), 500, "fail 500: disk full"},
		{"restored", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			restore := func(_ context.Context, r io.Reader) (snapshotfile.Info, error) {
				b, _ := io.ReadAll(r)
				got = string(b)
				return snapshotfile.Info{Index: 7, NodeID: "node1", Created: created}, tc.err
			}
			rec := httptest.NewRecorder()
			Restore(rec, httptest.NewRequest("POST", "/v1/snapshot", strings.NewReader("FILE")), restore, failBody, quiet)
			if got != "FILE" {
				t.Fatalf("restore read %q, want the request body", got)
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				if rec.Body.String() != tc.body {
					t.Fatalf("body %q, want %q", rec.Body, tc.body)
				}
				return
			}
			var doc struct {
				Restored    bool      `json:"restored"`
				SourceIndex uint64    `json:"sourceIndex"`
				SourceNode  string    `json:"sourceNode"`
				Created     time.Time `json:"created"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || !doc.Restored || doc.SourceIndex != 7 || doc.SourceNode != "node1" || !doc.Created.Equal(created) {
				t.Fatalf("answer %s (%v)", rec.Body, err)
			}
		})
	}
}

func TestSealed_MatchesErrSealed(t *testing.T) {
	err := fmt.Errorf("saving: %w", Sealed("sealed now"))
	if !errors.Is(err, ErrSealed) || errors.Is(errors.New("sealed now"), ErrSealed) || Sealed("x").Error() != "x" {
		t.Fatal("Sealed errors must match ErrSealed and keep their text; others must not match")
	}
}
