package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

// benchLog writes n records shaped like a data-plane read (~820 bytes each) to a new log.
func benchLog(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	allowed := true
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				rec := audit.Record{Time: "2026-11-23T23:17:02.0000000Z", ResourceID: "/SUBSCRIPTIONS/X/RESOURCEGROUPS/BENCH/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/BENCHKV",
					OperationName: "SecretGet", OperationVersion: "7.4", Category: "AuditEvent", ResultType: "Success", ResultSignature: "OK",
					DurationMs: 1, CallerIPAddress: "127.0.0.1", RequestID: "6f1c0e4e-4d0b-4c57-9d43-" + strconv.Itoa(100000000000+i),
					Identity: &audit.Identity{Claim: audit.Claims{AppID: "a", IdentityType: "app", ObjectID: "o", TenantID: "t"}},
					Properties: audit.Properties{ID: "https://benchkv.vault.localhost:18443/secrets/perf-0001/0123456789abcdef0123456789abcdef", ClientInfo: "Go-http-client/1.1",
						HTTPStatusCode: 200, RequestURI: "https://benchkv.vault.localhost:18443/secrets/perf-0001/?api-version=7.4", IsRbacAuthorized: &allowed, TLSVersion: "TLS1_3"}}
				if err := l.Write(context.Background(), &rec); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpen opens (and closes, writing nothing) a 200,000-record log: "checkpoint" is every
// open after the first, "no-checkpoint" a first open that reads the whole log and writes one.
// BenchmarkVerify re-hashes the same log; its MB/s is `strongroom audit verify`'s throughput.
func BenchmarkOpen(b *testing.B) {
	path := benchLog(b, 200_000)
	fi, _ := os.Stat(path)
	b.Logf("log: %d records, %d bytes", 200_000, fi.Size())
	for _, mode := range []string{"checkpoint", "no-checkpoint"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				if mode == "no-checkpoint" {
					os.Remove(path + ".checkpoint")
				}
				l, err := audit.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				l.Close()
			}
		})
	}
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			if res, err := audit.Verify(path); err != nil || res.Records != 200_000 {
				b.Fatal(res, err)
			}
		}
	})
	b.Run("verifyset", func(b *testing.B) { // `audit verify`: also finds checkpoint records
		b.SetBytes(fi.Size())
		for b.Loop() {
			if rep, err := audit.VerifySet([]string{path}, audit.VerifyOptions{}); err != nil || rep.Records != 200_000 {
				b.Fatal(rep, err)
			}
		}
	})
}
