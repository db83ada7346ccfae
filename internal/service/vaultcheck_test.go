package service_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Opening a store of many vaults reads no vault's tip: each vault's rollback check runs at its
// first use, once, so start-up costs one scan of the vault records and no random reads.
func TestService_VaultChecksDeferredToFirstUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rootKey := bytes.Repeat([]byte{1}, keyring.KeySize)
	kr, err := keyring.Open(ctx, st, rootKey)
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
	st.Close()
}
