package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/httpapi"
)

// BenchmarkServeHTTP_GetSecret is the read path of `strongroom bench --mode read` without TLS
// and the network: token check, vault lookup, authorization, store read, decryption and the
// bundle, with a real audit log file or with records counted and dropped (the handler's own
// cost, steadier). It measures what Strongroom adds per read over net/http.
func BenchmarkServeHTTP_GetSecret(b *testing.B) {
	b.Run("audit=file", func(b *testing.B) {
		al, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer al.Close()
		benchGetSecret(b, al)
	})
	b.Run("audit=discard", func(b *testing.B) { benchGetSecret(b, &flakySink{}) })
}

func benchGetSecret(b *testing.B, sink httpapi.AuditLog) {
	e := newTestAPI(b, sink)
	put := httptest.NewRequest("PUT", "https://kv-audit.vault.localhost:9/secrets/perf-0001?api-version=7.4", strings.NewReader(`{"value":"`+strings.Repeat("v", 100)+`"}`))
	put.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, put)
	if rec.Code != http.StatusOK {
		b.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "https://kv-audit.vault.localhost:9/secrets/perf-0001/?api-version=7.4", nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET: %d", rec.Code)
		}
	}
}
