package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

var rootA = bytes.Repeat([]byte{7}, keyring.KeySize)

func newKeyring(t *testing.T) (*keyring.Keyring, store.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(context.Background(), st, rootA)
	if err != nil {
		t.Fatal(err)
	}
	return kr, st
}

func TestKeyring_SealOpen_BindsDomainAndLocation(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t)
	rec, err := kr.Seal(ctx, "vault/a", "s/1", []byte("canary"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte("canary")) {
		t.Fatal("sealed record contains the plaintext")
	}
	rec2, _ := kr.Seal(ctx, "vault/a", "s/1", []byte("canary"))
	if bytes.Equal(rec[5:65], rec2[5:65]) {
		t.Fatal("two records share a wrapped data key")
	}
	cases := []struct {
		name, domain, loc string
		rec               []byte
		wantErr           error
	}{
		{"same place", "vault/a", "s/1", rec, nil},
		{"moved key", "vault/a", "s/2", rec, keyring.ErrDecrypt},
		{"other vault", "vault/b", "s/1", rec, keyring.ErrDecrypt},
		{"flipped ciphertext bit", "vault/a", "s/1", flip(rec, len(rec)-1), keyring.ErrDecrypt},
		{"flipped wrapped-key bit", "vault/a", "s/1", flip(rec, 20), keyring.ErrDecrypt},
		{"unknown format", "vault/a", "s/1", flip(rec, 0), keyring.ErrDecrypt},
		{"unknown term", "vault/a", "s/1", flip(rec, 4), keyring.ErrUnknownTerm},
		{"truncated", "vault/a", "s/1", rec[:10], keyring.ErrDecrypt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pt, err := kr.Open(ctx, c.domain, c.loc, c.rec)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Open err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || string(pt) != "canary" {
				t.Fatalf("Open = %q, %v", pt, err)
			}
		})
	}
}

func TestKeyring_RotateRewrapRetire(t *testing.T) {
	ctx := context.Background()
	kr, st := newKeyring(t)
	old, _ := kr.Seal(ctx, "d", "k1", []byte("old value"))
	term, err := kr.Rotate(ctx)
	if err != nil || term != 2 {
		t.Fatalf("Rotate = %d, %v", term, err)
	}
	fresh, _ := kr.Seal(ctx, "d", "k2", []byte("new value"))
	if tOld, _ := keyring.Term(old); tOld != 1 {
		t.Fatalf("old record term = %d, want 1", tOld)
	}
	if tNew, _ := keyring.Term(fresh); tNew != 2 {
		t.Fatalf("new record term = %d, want 2", tNew)
	}
	if pt, err := kr.Open(ctx, "d", "k1", old); err != nil || string(pt) != "old value" {
		t.Fatalf("old record after rotate: %q, %v", pt, err)
	}
	// Its DEK is now cached: the same bytes under another key or domain must still fail.
	for _, where := range [][2]string{{"d", "k9"}, {"e", "k1"}} {
		if _, err := kr.Open(ctx, where[0], where[1], old); !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("cached record opened at %v: err = %v, want ErrDecrypt", where, err)
		}
	}
	// Another process sees the rotation after reloading from the store.
	other, err := keyring.Open(ctx, st, rootA)
	if err != nil || other.Status().ActiveTerm != 2 {
		t.Fatalf("second keyring: %+v, %v", other.Status(), err)
	}
	rw, changed, err := kr.Rewrap("d", "k1", old)
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v", changed, err)
	}
	if tr, _ := keyring.Term(rw); tr != 2 || !bytes.Equal(rw[77:], old[77:]) {
		t.Fatalf("rewrapped term %d; ciphertext unchanged = %v", tr, bytes.Equal(rw[77:], old[77:]))
	}
	if _, changed, _ := kr.Rewrap("d", "k2", fresh); changed {
		t.Fatal("a record already under the active term was rewrapped")
	}
	gone, err := kr.RetireTerms(ctx)
	if err != nil || len(gone) != 1 || gone[0] != 1 {
		t.Fatalf("RetireTerms = %v, %v", gone, err)
	}
	if _, err := kr.Open(ctx, "d", "k1", old); !errors.Is(err, keyring.ErrUnknownTerm) {
		t.Fatalf("record under a retired term: err = %v, want ErrUnknownTerm", err)
	}
	if pt, err := kr.Open(ctx, "d", "k1", rw); err != nil || string(pt) != "old value" {
		t.Fatalf("rewrapped record after retire: %q, %v", pt, err)
	}
}

func TestKeyring_BackupKeys(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t)
	b1, err := kr.SealBackup("p", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.OpenBackup("other", b1); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("wrong purpose err = %v", err)
	}
	id, err := kr.RotateBackupKey(ctx)
	if err != nil || id != 2 {
		t.Fatalf("RotateBackupKey = %d, %v", id, err)
	}
	b2, _ := kr.SealBackup("p", []byte("payload2"))
	if pt, err := kr.OpenBackup("p", b1); err != nil || string(pt) != "payload" {
		t.Fatalf("old blob after rotation: %v", err)
	}
	if err := kr.RevokeBackupKey(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.OpenBackup("p", b1); !errors.Is(err, keyring.ErrBackupKeyRevoked) {
		t.Fatalf("revoked blob err = %v, want ErrBackupKeyRevoked", err)
	}
	if pt, err := kr.OpenBackup("p", b2); err != nil || string(pt) != "payload2" {
		t.Fatalf("current blob after revocation: %v", err)
	}
}

func TestKeyring_Open_WrongRootKey(t *testing.T) {
	_, st := newKeyring(t)
	if _, err := keyring.Open(context.Background(), st, bytes.Repeat([]byte{8}, keyring.KeySize)); !errors.Is(err, keyring.ErrWrongRootKey) {
		t.Fatalf("Open with wrong root err = %v, want ErrWrongRootKey", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestKeyring_Rekey(t *testing.T) {
	ctx := context.Background()
	kr, st := newKeyring(t)
	rec, _ := kr.Seal(ctx, "d", "k", []byte("v"))
	oldRing, _ := st.Get(ctx, keyring.RingKey)
	rootB := bytes.Repeat([]byte{9}, keyring.KeySize)
	if err := kr.Rekey(ctx, rootB); err != nil {
		t.Fatal(err)
	}
	if pt, err := kr.Open(ctx, "d", "k", rec); err != nil || string(pt) != "v" {
		t.Fatalf("record after rekey: %v", err)
	}
	if _, err := keyring.Load(ctx, st, rootA); !errors.Is(err, keyring.ErrWrongRootKey) {
		t.Fatalf("old root after rekey err = %v, want ErrWrongRootKey", err)
	}
	if _, err := keyring.Load(ctx, st, rootB); err != nil {
		t.Fatalf("new root after rekey: %v", err)
	}
	newRing, _ := st.Get(ctx, keyring.RingKey)
	if bytes.Equal(oldRing, newRing) {
		t.Fatal("the keyring record was not re-sealed")
	}
}

// TestKeyring_NoKeyMaterialInStoreFile scans the bbolt file for the root key, every term and
// backup key, and the data keys of stored records.
func TestKeyring_NoKeyMaterialInStoreFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(ctx, st, rootA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{rootA}
	needles = append(needles, kr.TermKeys()...)
	for i := range 20 {
		key := "k/" + string(rune('a'+i))
		rec, err := kr.Seal(ctx, "d", key, []byte("value"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(ctx, []store.Op{store.Put(key, rec)}); err != nil {
			t.Fatal(err)
		}
		dek, err := kr.RecordKey("d", key, rec)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, dek)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(needles) != 1+3+20 {
		t.Fatalf("%d needles, want 24", len(needles))
	}
	for i, n := range needles {
		if bytes.Contains(data, n) {
			t.Errorf("key material %d found in the store file", i)
		}
	}
}
