package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Records written before rollback counters (no counters, no tips) keep working, gain counters
// and tips on their next write, and from then on an older, counter-less copy is refused.
func TestIntegrity_LegacyRecordsUpgradeOnWrite(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{SubscriptionID: "sub", TenantID: "t", VaultURI: func(n string) string { return "https://" + n },
		Authorizer: rbac.BootstrapDecider("admin"),
		Now:        func() time.Time { now = now.Add(time.Millisecond); return now }}
	svc, err := New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	actx := WithCaller(ctx, Caller{ObjectID: "admin"})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	days := 7
	if _, _, err := svc.PutVault(actx, "rg", "kv-legacy", VaultInput{Location: "eastus", Properties: VaultProperties{
		TenantID: "11111111-1111-1111-1111-111111111111", Sku: &Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}}); err != nil {
		t.Fatal(err)
	}
	val1, val2 := "value-1", "value-2"
	s1, err := svc.SetSecret(actx, "kv-legacy", "old", SecretInput{Value: &val1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(actx, "kv-legacy", "old", SecretInput{Value: &val2}); err != nil {
		t.Fatal(err)
	}
	// Rewrite every record as the oldest format had it (JSON, no counters) and drop the tips.
	v := svc.cachedVault("kv-legacy")
	legacy := func(key, domain string, rec any) []byte {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		out, err := kr.Seal(ctx, domain, key, b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var ops []store.Op
	if err := st.Scan(ctx, "v/"+v.ID+"/", "", func(key string, raw []byte) bool {
		switch {
		case strings.HasSuffix(key, tipSuffix):
			ops = append(ops, store.Delete(key))
		case key == headKey(v, "old"):
			var h secretHead
			if err := svc.open(ctx, vaultKeyID(v), key, raw, &h); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, store.Put(key, legacy(key, vaultKeyID(v), h))) // JSON drops counters
		default:
			var sv SecretVersion
			if err := svc.open(ctx, vaultKeyID(v), key, raw, &sv); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, store.Put(key, legacy(key, vaultKeyID(v), sv)))
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	lv := *v
	lv.Seq, lv.Tip = 0, nil
	ops = append(ops, store.Put(vaultPrefix+"kv-legacy", legacy(vaultPrefix+"kv-legacy", keyring.SystemKeyID, &lv)))
	if err := st.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if svc, err = New(ctx, st, kr, opts); err != nil {
		t.Fatal(err)
	}
	legacyHead, err := st.Get(ctx, headKey(v, "old"))
	if err != nil {
		t.Fatal(err)
	}
	// Reads of legacy records work.
	if s, err := svc.GetSecret(actx, "kv-legacy", "old", ""); err != nil || s.Value != val2 {
		t.Fatalf("latest = %q, %v", s.Value, err)
	}
	if s, err := svc.GetSecret(actx, "kv-legacy", "old", s1.Version); err != nil || s.Value != val1 {
		t.Fatalf("older = %q, %v", s.Value, err)
	}
	// Writes add counters and tips.
	off := false
	if _, err := svc.UpdateSecret(actx, "kv-legacy", "old", s1.Version, SecretUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PatchVault(actx, "rg", "kv-legacy", map[string]string{"t": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	h, _, found, err := svc.head(ctx, v, "old")
	if err != nil || !found || h.Seq == 0 {
		t.Fatalf("head after a write: seq %d, %v, %v", h.Seq, found, err)
	}
	if _, err := svc.ListSecretVersions(actx, "kv-legacy", "old", 25, ""); err != nil {
		t.Fatal(err)
	}
	// The counter-less copy of the head is now older than its tip.
	if err := st.Apply(ctx, []store.Op{store.Put(headKey(v, "old"), legacyHead)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetSecret(actx, "kv-legacy", "old", ""); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("legacy head over an upgraded secret: %v; want ErrIntegrity", err)
	}
}

// A head holds at most maxPins pins; beyond it the lowest goes and PinFloor admits its
// version's current record (and, the documented cost, that version's older copies).
func TestIntegrity_PinsAreBounded(t *testing.T) {
	var h secretHead
	id := func(i int) string { return fmt.Sprintf("%032x", i) }
	for i := 1; i <= maxPins+3; i++ {
		if err := h.setPin(id(i), uint64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if h.PinFloor != 103 {
		t.Errorf("PinFloor = %d, want 103", h.PinFloor)
	}
	if _, ok := h.pin(id(3)); ok {
		t.Error("the lowest pins were kept")
	}
	if seq, ok := h.pin(id(maxPins + 3)); !ok || seq != uint64(100+maxPins+3) {
		t.Errorf("newest pin = %d, %v", seq, ok)
	}
	if err := h.setPin(strings.ToUpper(id(4)), 999); err != nil { // re-pinning replaces, any case
		t.Fatal(err)
	}
	if seq, ok := h.pin(id(4)); !ok || seq != 999 {
		t.Errorf("re-pinned = %d, %v", seq, ok)
	}
	h.Seq = 1000
	evicted := SecretVersion{Version: id(2), seq: 102, born: 50}
	if p := h.versionProblem(&evicted); p != "" {
		t.Errorf("an evicted version's current record refused: %s", p)
	}
	stale := SecretVersion{Version: id(4), seq: 104, born: 50}
	if p := h.versionProblem(&stale); p == "" {
		t.Error("an older copy of a pinned version accepted")
	}
}
