package service_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	admin  = "admin-oid"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T) (*service.Service, *clock, context.Context) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := testOptions()
	opts.Now = clk.Now
	svc, err := service.New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	return svc, clk, actx
}

func mkVault(t testing.TB, svc *service.Service, ctx context.Context, name string, days int, protect bool) {
	t.Helper()
	p := service.VaultProperties{TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}
	if protect {
		p.EnablePurgeProtection = &protect
	}
	if _, _, err := svc.PutVault(ctx, "rg", name, service.VaultInput{Location: "eastus", Properties: p}); err != nil {
		t.Fatal(err)
	}
}

func TestService_PurgeExpired_AfterRetention(t *testing.T) {
	svc, clk, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-a", 7, true)
	v := "x"
	for _, n := range []string{"s1", "s2"} {
		if _, err := svc.SetSecret(ctx, "kv-a", n, service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.DeleteSecret(ctx, "kv-a", "s1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(7*24*time.Hour - time.Second)
	if ns, _, err := svc.PurgeExpired(ctx); err != nil || ns != 0 {
		t.Fatalf("before retention: purged %d, %v", ns, err)
	}
	clk.Advance(time.Second)
	if ns, _, err := svc.PurgeExpired(ctx); err != nil || ns != 1 {
		t.Fatalf("at retention: purged %d, %v; want 1 (even with purge protection)", ns, err)
	}
	if _, err := svc.GetDeletedSecret(ctx, "kv-a", "s1"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("purged secret still deleted-visible: %v", err)
	}
	if _, err := svc.GetSecret(ctx, "kv-a", "s2", ""); err != nil {
		t.Fatalf("live secret touched by the purger: %v", err)
	}

	// Deleted vaults go the same way, and their name becomes free.
	if err := svc.DeleteVault(ctx, "rg", "kv-a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(7 * 24 * time.Hour)
	if _, nv, err := svc.PurgeExpired(ctx); err != nil || nv != 1 {
		t.Fatalf("vault purge: %d, %v", nv, err)
	}
	if ok, _, _, _ := svc.NameAvailable(ctx, "kv-a"); !ok {
		t.Fatal("purged vault name still reserved")
	}
}

func TestService_ConcurrentSetsAllLand(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-c", 90, false)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := string(rune('a' + i))
			if _, err := svc.SetSecret(ctx, "kv-c", "same", service.SecretInput{Value: &v}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	p, err := svc.ListSecretVersions(ctx, "kv-c", "same", 25, "")
	if err != nil || len(p.Items) != 20 {
		t.Fatalf("versions = %d, %v; want 20", len(p.Items), err)
	}
}

func testOptions() service.Options {
	return service.Options{
		SubscriptionID: "sub", TenantID: tenant,
		VaultURI:   func(n string) string { return "https://" + n + ".vault.localhost" },
		Authorizer: rbac.BootstrapDecider(admin),
	}
}
