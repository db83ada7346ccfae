package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
)

// Known-answer vector for the audit log: two fixed records written to a new log must give
// exactly the lines in testdata/chain.jsonl (field names and order, omitted empty fields,
// escaping, the time format, prevHash = hex SHA-256 of the previous line, "" for the first), and
// that checked-in log must verify and resume its chain at a known hash. Regenerate only for a
// deliberate format change with STRONGROOM_UPDATE_VECTORS=1.

const chainFile = "testdata/chain.jsonl"

// chainLastHash is the SHA-256 of chain.jsonl's second line.
const chainLastHash = "de2ffaa7e34da6abe9cef4cddde707f43377c1b9b5a173fd212e2e995624c890"

func vectorRecords() []*audit.Record {
	yes := true
	return []*audit.Record{
		{
			Time:          audit.FormatTime(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)),
			ResourceID:    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1",
			OperationName: "SecretGet", OperationVersion: "7.4", Category: "AuditEvent",
			ResultType: "Success", ResultSignature: "OK", ResultDescription: "<&> \"quoted\" ünï",
			DurationMs: 12, CallerIPAddress: "127.0.0.1", CorrelationID: "c0rr",
			RequestID: "11111111-2222-4333-8444-555555555555",
			Identity:  &audit.Identity{Claim: audit.Claims{AppID: "app", IdentityType: "app", ObjectID: "oid", TenantID: "tid"}},
			Properties: audit.Properties{
				ID: "https://kv1.vault.localhost:8443/secrets/alpha", ClientInfo: "azsdk-go", HTTPStatusCode: 200,
				RequestURI: "https://kv1.vault.localhost:8443/secrets/alpha?api-version=7.4", IsRbacAuthorized: &yes,
				AppliedAssignmentID: "a1", TLSVersion: "TLS1_3",
			},
		},
		{
			Time:          audit.FormatTime(time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)),
			OperationName: "Authentication", Category: "AuditEvent", ResultType: "Failure", ResultSignature: "Unauthorized",
			RequestID:  "66666666-7777-4888-9999-aaaaaaaaaaaa",
			Properties: audit.Properties{HTTPStatusCode: 401, RequestURI: "https://kv1.vault.localhost:8443/secrets/alpha"},
		},
	}
}

func writeLog(t *testing.T, path string, recs []*audit.Record) {
	t.Helper()
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVectors_LinesAndChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, path, vectorRecords())
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("STRONGROOM_UPDATE_VECTORS") == "1" {
		if err := os.WriteFile(chainFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(chainFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("audit lines changed:\n got %s\nwant %s", got, want)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(want), "\n"), "\n")
	first := sha256.Sum256([]byte(strings.TrimSuffix(lines[0], "\n")))
	if !strings.HasSuffix(lines[0], `"prevHash":""}`+"\n") || !strings.HasSuffix(lines[1], `"prevHash":"`+hex.EncodeToString(first[:])+`"}`) {
		t.Fatal("prevHash is not empty on the first line and the SHA-256 of the first line on the second")
	}
	res, err := audit.Verify(chainFile)
	if err != nil || res.Records != 2 || res.LastHash != chainLastHash {
		t.Fatalf("Verify(%s) = %+v, %v; want 2 records ending at %s", chainFile, res, err, chainLastHash)
	}
	// A log opened on the checked-in one chains its next record to the known hash.
	resumed := filepath.Join(t.TempDir(), "resumed.log")
	if err := os.WriteFile(resumed, want, 0o600); err != nil {
		t.Fatal(err)
	}
	writeLog(t, resumed, vectorRecords()[1:])
	b, _ := os.ReadFile(resumed)
	if !strings.HasSuffix(string(b), `"prevHash":"`+chainLastHash+`"}`+"\n") {
		t.Fatalf("resumed log's next record does not chain to %s", chainLastHash)
	}
}
