package keyring_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// A keyring record and a sealed record (format 2) written by the code before generations
// existed, under rootA.
const (
	format2Ring   = "01f1f873a1b0625dabfa374ad2f60942a505b647e688024b7a6506ff048ee7050d04214083088e64fe268c6a6d789d84b90f2344f3a2df96c0ae33fe68215cbf88a40f07bbeb0a9621df58218eebae866c3490d4e3d8f5b73d56debda02dfac68430c8ca363d4c030a040a24cfea4c52d3fffd643bebb9b57bdeb8cd7a4fba40acbc76392d8c7727321d09d210cf10710314d28aade4667b077755166765be7345964f28e91f1660981c45fd9f5e9f8ba5dd61b3ffd3d24b835817ccd897bf"
	format2Record = "02000000010b4373dedeeedfb802e1a65dc1695a4a444632f7831cf8854959d6d3550381e0e05136b18f1de360c7b269226bac51d36f6d0043865aae52c7284f65fc4d2462901c063da2123b72a12d2acf9a84cee3b574148008011ba2733ac4be9720212cea0a07b98c983ea3a77262"
	format2Domain = "vault/0123456789abcdef"
	format2Key    = "v/0123456789abcdef/n/OLD!~"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Data folders written before format 3 stay readable; new writes use format 3, and old
// records stay bound to their location.
func TestKeyring_ReadsFormat2Records(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := mustHex(t, format2Record)
	if err := st.Apply(ctx, []store.Op{store.Put(keyring.RingKey, mustHex(t, format2Ring)), store.Put(format2Key, old)}); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Load(ctx, st, rootA)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := kr.Open(ctx, format2Domain, format2Key, old)
	if err != nil || string(pt) != "written by format 2" {
		t.Fatalf("format-2 record: %q, %v", pt, err)
	}
	if _, err := kr.Open(ctx, format2Domain, format2Key+"x", old); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("format-2 record at another key: %v", err)
	}
	rec, err := kr.Seal(ctx, format2Domain, format2Key, []byte("rewritten"))
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != 3 {
		t.Fatalf("new records use format %d, want 3", rec[0])
	}
	// Relabelling a format-3 record as format 2 does not get past authentication.
	relabelled := bytes.Clone(rec)
	relabelled[0] = 2
	if _, err := kr.Open(ctx, format2Domain, format2Key, relabelled); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("format-3 record relabelled as 2: %v", err)
	}
	// Rewrapping an old record keeps it readable (its format does not change).
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rw, changed, err := kr.Rewrap(format2Domain, format2Key, old)
	if err != nil || !changed || rw[0] != 2 {
		t.Fatalf("rewrap of a format-2 record: %v %v", changed, err)
	}
	if pt, err := kr.Open(ctx, format2Domain, format2Key, rw); err != nil || string(pt) != "written by format 2" {
		t.Fatalf("rewrapped format-2 record: %q, %v", pt, err)
	}
}

// Replacing the keyring record with an older copy (here: to bring back a revoked backup key) is
// detected by every record sealed after the newer keyring, in a running server and after a
// restart; records sealed before it still open.
func TestKeyring_RolledBackKeyringIsDetected(t *testing.T) {
	ctx := context.Background()
	kr, st := newKeyring(t)
	before, err := kr.Seal(ctx, "vault/a", "s/before", []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	oldRing, err := st.Get(ctx, keyring.RingKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := kr.RotateBackupKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.RevokeBackupKey(ctx, id-1); err != nil {
		t.Fatal(err)
	}
	after, err := kr.Seal(ctx, "vault/a", "s/after", []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := st.Get(ctx, keyring.RingKey)
	// The attacker writes the old keyring record back.
	if err := st.Apply(ctx, []store.Op{store.RequireEqual(keyring.RingKey, cur), store.Put(keyring.RingKey, oldRing)}); err != nil {
		t.Fatal(err)
	}
	if err := kr.Reload(ctx); err != nil { // a cluster node reloads it when it is applied
		t.Fatal(err)
	}
	restarted, err := keyring.Load(ctx, st, rootA)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*keyring.Keyring{"running": kr, "restarted": restarted} {
		if _, err := k.Open(ctx, "vault/a", "s/after", after); !errors.Is(err, keyring.ErrRolledBack) {
			t.Errorf("%s: record sealed after the rolled-back change: %v, want ErrRolledBack", name, err)
		}
		if pt, err := k.Open(ctx, "vault/a", "s/before", before); err != nil || string(pt) != "before" {
			t.Errorf("%s: record sealed before it: %q, %v", name, pt, err)
		}
	}
}

// A keyring changed elsewhere (another cluster node) is reloaded, not mistaken for a rollback.
func TestKeyring_NewerGenerationReloads(t *testing.T) {
	ctx := context.Background()
	kr, st := newKeyring(t)
	other, err := keyring.Load(ctx, st, rootA) // another node's view of the same store
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RotateBackupKey(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := kr.Seal(ctx, "vault/a", "s/1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := other.Open(ctx, "vault/a", "s/1", rec); err != nil || string(pt) != "x" {
		t.Fatalf("record of a newer keyring on a node that has not reloaded: %q, %v", pt, err)
	}
}
