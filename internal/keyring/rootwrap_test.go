package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Root-wrapped blobs open on another deployment with the same root key (a fresh keyring), and
// nowhere else.
func TestKeyring_SealRoot_OpensUnderSameRootOnly(t *testing.T) {
	kr, _ := newKeyring(t)
	blob, err := kr.SealRoot("snap", []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(root []byte) *keyring.Keyring {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "other.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		k, err := keyring.Open(context.Background(), st, root)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if pt, err := fresh(rootA).OpenRoot("snap", blob); err != nil || string(pt) != "data key" {
		t.Fatalf("same root, fresh keyring: %q, %v", pt, err)
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name    string
		kr      *keyring.Keyring
		purpose string
		blob    []byte
	}{
		{"other root key", fresh(bytes.Repeat([]byte{8}, keyring.KeySize)), "snap", blob},
		{"other purpose", kr, "other", blob},
		{"tampered", kr, "snap", flipped},
		{"short", kr, "snap", blob[:10]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.kr.OpenRoot(c.purpose, c.blob); !errors.Is(err, keyring.ErrDecrypt) {
				t.Fatalf("open = %v, want ErrDecrypt", err)
			}
		})
	}
}
