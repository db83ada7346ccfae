package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

func newKeyring(t *testing.T) (*keyring.Keyring, store.Store, []byte) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := bytes.Repeat([]byte{7}, keyring.KeySize)
	kr, ops, err := keyring.Open(context.Background(), st, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	return kr, st, root
}

func TestKeyring_SealOpen_BindsKeyIDAndLocation(t *testing.T) {
	ctx := context.Background()
	kr, st, _ := newKeyring(t)
	for _, id := range []string{"vault/a", "vault/b"} {
		ops, err := kr.NewDataKey(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := kr.Seal(ctx, "vault/a", "s/1", []byte("canary"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte("canary")) {
		t.Fatal("sealed record contains the plaintext")
	}
	cases := []struct {
		name, keyID, loc string
		rec              []byte
		wantErr          bool
	}{
		{"same place", "vault/a", "s/1", rec, false},
		{"moved key", "vault/a", "s/2", rec, true},
		{"other vault", "vault/b", "s/1", rec, true},
		{"flipped bit", "vault/a", "s/1", flip(rec, len(rec)-1), true},
		{"unknown format", "vault/a", "s/1", flip(rec, 0), true},
		{"truncated", "vault/a", "s/1", rec[:10], true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pt, err := kr.Open(ctx, c.keyID, c.loc, c.rec)
			if c.wantErr {
				if !errors.Is(err, keyring.ErrDecrypt) {
					t.Fatalf("Open err = %v, want ErrDecrypt", err)
				}
				return
			}
			if err != nil || string(pt) != "canary" {
				t.Fatalf("Open = %q, %v", pt, err)
			}
		})
	}
}

func TestKeyring_DestroyDataKey_ErasesRecords(t *testing.T) {
	ctx := context.Background()
	kr, st, _ := newKeyring(t)
	ops, _ := kr.NewDataKey("vault/x")
	if err := st.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	rec, _ := kr.Seal(ctx, "vault/x", "k", []byte("v"))
	if err := st.Apply(ctx, []store.Op{kr.DestroyDataKey("vault/x")}); err != nil {
		t.Fatal(err)
	}
	kr.Forget("vault/x")
	if _, err := kr.Open(ctx, "vault/x", "k", rec); !errors.Is(err, keyring.ErrKeyDestroyed) {
		t.Fatalf("Open after destroy err = %v, want ErrKeyDestroyed", err)
	}
}

func TestKeyring_Open_WrongRootKey(t *testing.T) {
	_, st, _ := newKeyring(t)
	if _, _, err := keyring.Open(context.Background(), st, bytes.Repeat([]byte{8}, keyring.KeySize)); !errors.Is(err, keyring.ErrWrongRootKey) {
		t.Fatalf("Open with wrong root err = %v, want ErrWrongRootKey", err)
	}
}

func TestFileSeal_CreatesThenReuses(t *testing.T) {
	s := keyring.FileSeal{Path: filepath.Join(t.TempDir(), "seal.key")}
	k1, err := s.RootKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.RootKey()
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second RootKey = %x, %v; want %x", k2, err, k1)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
