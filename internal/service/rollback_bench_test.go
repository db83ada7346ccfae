package service_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// BenchmarkService_GetSecret is the service's share of the hottest read: GET of the latest
// version (the head and its tip) and of an older version (head, tip and the version record),
// on the store the server opens (bbolt with the write-ahead log).
func BenchmarkService_GetSecret(b *testing.B) {
	ctx := context.Background()
	st, err := bolt.OpenWithWAL(filepath.Join(b.TempDir(), "data.db"), bolt.WALOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := service.New(ctx, st, kr, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		b.Fatal(err)
	}
	days := 7
	if _, _, err := svc.PutVault(actx, "rg", "kv-bench", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{
		TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}}); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("v", 100)
	old, err := svc.SetSecret(actx, "kv-bench", "perf-0001", service.SecretInput{Value: &value})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.SetSecret(actx, "kv-bench", "perf-0001", service.SecretInput{Value: &value}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, version string }{{"latest", ""}, {"older", old.Version}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.GetSecret(actx, "kv-bench", "perf-0001", c.version); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
