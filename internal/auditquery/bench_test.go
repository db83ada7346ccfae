package auditquery_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/auditquery"
)

// BenchmarkRun_Scan reads a 50,000-record log for a filter that matches 1 record in 1,000 (the
// cost of a query is the lines read); bytes/s is the scan rate.
func BenchmarkRun_Scan(b *testing.B) {
	dir := b.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50_000 {
		oid := "00000000-0000-0000-0000-" + strconv.Itoa(100000000000+i%1000)
		if err := l.Record(context.Background(), audit.Event{Time: start.Add(time.Duration(i) * time.Millisecond), Operation: "SecretGet", Status: 200,
			ResourceID: alphaID, URI: "https://alpha.vault.localhost:8443/secrets/db-pass?api-version=7.4", CallerIP: "10.0.0.1",
			ClientInfo: "azsdk-go-azsecrets/v1.3.0", Caller: &audit.Claims{ObjectID: oid, AppID: oid, TenantID: oid}}); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	fi, _ := os.Stat(filepath.Join(dir, "audit.log"))
	cases := []struct {
		name string
		f    auditquery.Filter
	}{
		{"Caller", auditquery.Filter{Caller: "00000000-0000-0000-0000-100000000007"}},
		{"SinceLastTenth", auditquery.Filter{Since: start.Add(45 * time.Second)}}, // decodes only the lines in the window
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(fi.Size())
			for b.Loop() {
				if _, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: c.f, MaxScan: -1, Limit: auditquery.MaxLimit}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
