package service_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// countTerms counts sealed records per keyring term in the store.
func countTerms(t *testing.T, st store.Store) map[uint32]int {
	t.Helper()
	out := map[uint32]int{}
	err := st.Scan(context.Background(), "", "", func(key string, raw []byte) bool {
		if strings.HasPrefix(key, "sys/") {
			return true
		}
		if term, ok := keyring.Term(raw); ok {
			out[term]++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestService_RotateRewrap_Resumable(t *testing.T) {
	e := newServiceEnv(t)
	svc, ctx := e.svc, e.ctx
	mkVault(t, svc, ctx, "kv-r", 90, false)
	for i := range 40 {
		v := strings.Repeat("x", i+1)
		if _, err := svc.SetSecret(ctx, "kv-r", "s"+string(rune('a'+i%26))+string(rune('a'+i/26)), service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
	}
	term, err := svc.RotateKeyring(ctx)
	if err != nil || term != 2 {
		t.Fatalf("rotate = %d, %v", term, err)
	}
	v := "after rotation"
	if _, err := svc.SetSecret(ctx, "kv-r", "fresh", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	before := countTerms(t, e.st)
	if before[1] == 0 || before[2] < 2 {
		t.Fatalf("terms before rewrap = %v: want old records on 1 and the new secret's on 2", before)
	}
	// Old values still read.
	if got, err := svc.GetSecret(ctx, "kv-r", "saa", ""); err != nil || got.Value != "x" {
		t.Fatalf("old value after rotate: %v", err)
	}
	if _, err := svc.RetireOldTerms(ctx); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("retire before rewrap err = %v, want conflict", err)
	}
	// Interrupted run: at most 10 records, cursor left in the store.
	p1, err := svc.Rewrap(ctx, 10)
	if err != nil || p1.Done || p1.Rewrapped != 10 {
		t.Fatalf("first run = %+v, %v", p1, err)
	}
	mid := countTerms(t, e.st)
	if mid[1] != before[1]-10 {
		t.Fatalf("after interrupted run: %v, want %d on term 1", mid, before[1]-10)
	}
	p2, err := svc.Rewrap(ctx, 0)
	if err != nil || !p2.Done || p2.Rewrapped != before[1]-10 {
		t.Fatalf("resumed run = %+v, %v; want the remaining %d", p2, err, before[1]-10)
	}
	if after := countTerms(t, e.st); after[1] != 0 {
		t.Fatalf("records still under term 1 after rewrap: %v", after)
	}
	gone, err := svc.RetireOldTerms(ctx)
	if err != nil || len(gone) != 1 {
		t.Fatalf("retire = %v, %v", gone, err)
	}
	for _, n := range []string{"saa", "fresh"} {
		if _, err := svc.GetSecret(ctx, "kv-r", n, ""); err != nil {
			t.Fatalf("%s after retire: %v", n, err)
		}
	}
}

// A backup made before a purge still restores, until its backup key is revoked (the purge's
// erasure itself: TestService_Destroy_LeavesNoCiphertextInDataFolder).
func TestService_BackupOutlivesPurgeUntilRevoked(t *testing.T) {
	e := newServiceEnv(t)
	svc, ctx := e.svc, e.ctx
	mkVault(t, svc, ctx, "kv-p", 90, false)
	v := "purge-me-" + strings.Repeat("q", 64)
	if _, err := svc.SetSecret(ctx, "kv-p", "doomed", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	blob, err := svc.BackupSecret(ctx, "kv-p", "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteSecret(ctx, "kv-p", "doomed"); err != nil {
		t.Fatal(err)
	}
	if err := svc.PurgeDeletedSecret(ctx, "kv-p", "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RestoreSecret(ctx, "kv-p", blob); err != nil {
		t.Fatalf("restore after purge: %v", err)
	}
	if _, err := svc.DeleteSecret(ctx, "kv-p", "doomed"); err != nil {
		t.Fatal(err)
	}
	if err := svc.PurgeDeletedSecret(ctx, "kv-p", "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateBackupKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeBackupKey(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_, err = svc.RestoreSecret(ctx, "kv-p", blob)
	var de *service.Error
	if !errors.As(err, &de) || !errors.Is(err, service.ErrBadRequest) || !strings.Contains(de.Message, "revoked") {
		t.Fatalf("restore under a revoked backup key err = %v", err)
	}
}

type serviceEnv struct {
	svc         *service.Service
	st          *bolt.DB
	path        string
	ctx         context.Context
	clk         *clock
	compactions int // erasures the service asked for (each compacts the store at once)
}

func newServiceEnv(t *testing.T) *serviceEnv {
	t.Helper()
	e := &serviceEnv{path: filepath.Join(t.TempDir(), "data.db")}
	st, err := bolt.OpenWithWAL(e.path, bolt.WALOptions{}) // as the server opens it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	ctx := context.Background()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e.clk = &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := testOptions()
	opts.Now = e.clk.Now
	opts.Erased = func() {
		e.compactions++
		if err := st.Compact(ctx); err != nil {
			t.Errorf("compact: %v", err)
		}
	}
	svc, err := service.New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.ctx = service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(e.ctx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestService_StartRewrap_Background(t *testing.T) {
	e := newServiceEnv(t)
	svc, ctx := e.svc, e.ctx
	mkVault(t, svc, ctx, "kv-bg", 90, false)
	for i := range 30 {
		v := "v"
		if _, err := svc.SetSecret(ctx, "kv-bg", "s"+strings.Repeat("x", i+1), service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RotateKeyring(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartRewrap(ctx); err != nil {
		t.Fatal(err)
	}
	var job service.RewrapJob
	for i := 0; i < 500; i++ {
		var err error
		if job, err = svc.RewrapStatus(ctx); err != nil {
			t.Fatal(err)
		}
		if !job.Running {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if job.Running || !job.Done || job.Error != "" || job.Rewrapped < 30 {
		t.Fatalf("background rewrap = %+v", job)
	}
	if terms := countTerms(t, e.st); terms[1] != 0 {
		t.Fatalf("records left under term 1: %v", terms)
	}
}
