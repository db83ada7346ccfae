package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
)

func TestRecord_AppendJSON_MatchesEncodingJSON(t *testing.T) {
	yes, no := true, false
	tricky := []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x01\b\f\n\r\t\x1f", "<script>&amp;",
		"ünïcödé ✓ 𝄞", "bad \xff\xfe utf8 \xe2\x82", "line\u2028sep\u2029", "\x7f del"}
	var recs []audit.Record
	for i, s := range tricky {
		r := audit.Record{Time: s, OperationName: s, Category: "AuditEvent", ResultType: s, ResultSignature: s,
			RequestID: s, DurationMs: int64(i * 1000), Properties: audit.Properties{HTTPStatusCode: 200 + i, RequestURI: s}}
		if i%2 == 0 {
			r.ResourceID, r.OperationVersion, r.ResultDescription, r.CallerIPAddress, r.CorrelationID = s, s, s, s, s
			r.Identity = &audit.Identity{Claim: audit.Claims{AppID: s, IdentityType: "app", ObjectID: s, TenantID: s}}
			r.Properties.ID, r.Properties.ClientInfo, r.Properties.AppliedAssignmentID, r.Properties.TLSVersion = s, s, s, s
			r.Properties.IsRbacAuthorized = &yes
		} else if i%3 == 0 {
			r.Properties.IsRbacAuthorized = &no
			r.DurationMs = -5
		} else {
			r.Properties.IsAccessPolicyMatch, r.Properties.AppliedAssignmentID = &yes, s
		}
		if i == 5 {
			r.Properties.IsAccessPolicyMatch = &no
		}
		if i%4 == 1 { // policy verdicts as the HTTP layer marshals them
			v, _ := json.Marshal([]map[string]any{{"policyAssignmentId": s, "effect": "Deny", "complianceState": "NonCompliant", "denied": true, "reason": s}})
			r.Properties.PolicyEvaluations = v
		}
		recs = append(recs, r)
	}
	recs = append(recs, audit.Record{})
	for i, r := range recs {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := append(r.AppendJSON(nil), `"}`...)
		if !bytes.Equal(got, want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// A failed write fails its waiters and the sink; later writes fail at once.
func TestLog_WriteErrorFailsSink(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := write(l, "before"); err != nil {
		t.Fatal(err)
	}
	broken, err := os.Open(os.DevNull) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	l.SwapFile(broken, 5*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Write(context.Background(), &audit.Record{OperationName: "after"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, audit.ErrUnavailable) {
			t.Errorf("writer %d: err = %v, want ErrUnavailable", i, err)
		}
	}
	if l.Healthy() {
		t.Fatal("sink still healthy after a failed write")
	}
	if err := l.Write(context.Background(), &audit.Record{OperationName: "later"}); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("write after failure: err = %v", err)
	}
}

// A write that hangs (a full pipe stands in for a hung disk) fails after the deadline instead of
// holding requests forever.
func TestLog_HungWriteFailsAfterDeadline(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Fill the pipe so the next write blocks.
	if err := w.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err == nil {
		for {
			if _, err := w.Write(make([]byte, 64<<10)); err != nil {
				break
			}
		}
		w.SetWriteDeadline(time.Time{})
	}
	orig := l.SwapFile(w, 300*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- l.Write(context.Background(), &audit.Record{OperationName: "stuck"}) }()
	select {
	case err := <-done:
		if !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("hung write: err = %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hung write did not fail after its deadline")
	}
	if l.Healthy() {
		t.Fatal("sink healthy after a hung write")
	}
	// Unblock the stuck writer so Close can finish.
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	l.SwapFile(orig, 5*time.Second)
	l.Close()
	w.Close()
}

func BenchmarkLog_Write(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	allowed := true
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := audit.Record{Time: "2026-11-23T23:17:02.0000000Z", ResourceID: "/SUBSCRIPTIONS/X/RESOURCEGROUPS/BENCH/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/BENCHKV",
				OperationName: "SecretGet", OperationVersion: "7.4", Category: "AuditEvent", ResultType: "Success", ResultSignature: "OK",
				DurationMs: 1, CallerIPAddress: "127.0.0.1", RequestID: "6f1c0e4e-4d0b-4c57-9d43-3f3e3c1f6f1a",
				Identity: &audit.Identity{Claim: audit.Claims{AppID: "a", IdentityType: "app", ObjectID: "o", TenantID: "t"}},
				Properties: audit.Properties{ID: "https://benchkv.vault.localhost:18443/secrets/perf-0001/0123456789abcdef0123456789abcdef", ClientInfo: "Go-http-client/1.1",
					HTTPStatusCode: 200, RequestURI: "https://benchkv.vault.localhost:18443/secrets/perf-0001/?api-version=7.4", IsRbacAuthorized: &allowed, TLSVersion: "TLS1_3"}}
			if err := l.Write(context.Background(), &rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
