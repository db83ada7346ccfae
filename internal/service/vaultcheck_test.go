package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Opening a store of many vaults reads no vault's tip: each vault's rollback check runs at its
// first use, once, so start-up costs one scan of the vault records and no random reads.
func TestService_VaultChecksDeferredToFirstUse(t *testing.T) {
	ctx := context.Background()
	st, _, svc, actx := openStoreService(t)
	rootKey := testRootKey
	const n = 20
	for i := range n {
		mkVault(t, svc, actx, fmt.Sprintf("kv-lazy-%d", i), 7, false)
	}

	counting := &countingStore{Store: st}
	kr2, err := keyring.Open(ctx, counting, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	counting.reset()
	reopened, err := service.New(ctx, counting, kr2, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	tipReads := func() int {
		counting.mu.Lock()
		defer counting.mu.Unlock()
		k := 0
		for _, key := range counting.gotKeys {
			if strings.HasPrefix(key, "v/") && strings.HasSuffix(key, "/}") {
				k++
			}
		}
		return k
	}
	if got := tipReads(); got != 0 {
		t.Fatalf("opening %d vaults read %d tips, want 0", n, got)
	}
	for range 3 {
		if !reopened.LookupVault("kv-lazy-3").Found() {
			t.Fatal("vault not found")
		}
	}
	if got := tipReads(); got != 1 {
		t.Fatalf("three uses of one vault read %d tips, want 1", got)
	}
}

// testRootKey is the root key openStoreService's keyring is opened with.
var testRootKey = bytes.Repeat([]byte{1}, keyring.KeySize)

// openStoreService opens a fresh bolt store, its keyring and a service with resource group
// "rg", and returns them with the admin's context.
func openStoreService(t *testing.T) (store.Store, *keyring.Keyring, *service.Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, testRootKey)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, st, kr, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	return st, kr, svc, actx
}

// A vault record written before access policies were enforced (no model marker) stored
// enableRbacAuthorization false by default while only role assignments decided: it loads as
// an RBAC vault, so an upgrade changes no one's access; records written since keep their model.
func TestService_VaultsFromBeforePoliciesWereEnforcedStayRBAC(t *testing.T) {
	ctx := context.Background()
	st, kr, svc, actx := openStoreService(t)
	off, days, v := false, 7, "x"
	for _, name := range []string{"kv-old", "kv-new"} {
		if _, _, err := svc.PutVault(actx, "rg", name, service.VaultInput{Location: "eastus", Properties: service.VaultProperties{
			TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days, EnableRbacAuthorization: &off}}); err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite kv-old's record as an earlier build wrote it: the same record without the marker.
	key := "arm/vault/kv-old"
	raw, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := kr.Open(ctx, keyring.SystemKeyID, key, raw)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(pt, &rec); err != nil || rec["model"] == nil {
		t.Fatalf("record %s has no model marker: %v", pt, err)
	}
	delete(rec, "model")
	pt, _ = json.Marshal(rec)
	sealed, err := kr.Seal(ctx, keyring.SystemKeyID, key, pt)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, []store.Op{store.Put(key, sealed)}); err != nil {
		t.Fatal(err)
	}

	reopened, err := service.New(ctx, st, kr, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.SetSecret(actx, "kv-old", "s", service.SecretInput{Value: &v}); err != nil {
		t.Fatalf("the admin's role on a vault from before: %v", err)
	}
	got, err := reopened.GetVault(actx, "rg", "kv-old")
	if err != nil || got.Properties.EnableRbacAuthorization == nil || !*got.Properties.EnableRbacAuthorization {
		t.Fatalf("kv-old shows enableRbacAuthorization %v, %v; want true", got.Properties.EnableRbacAuthorization, err)
	}
	if _, err := reopened.SetSecret(actx, "kv-new", "s", service.SecretInput{Value: &v}); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("a vault written with access policies and no entry: %v, want Forbidden", err)
	}
}
