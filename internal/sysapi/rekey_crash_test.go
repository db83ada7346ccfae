package sysapi

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// A file-seal rekey is: write <key>.next durably, commit the keyring under it, rename it over
// the key file. Each crash point must leave a data folder that unseals under the committed key.
func TestFileSealRekey_CrashPoints(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	cases := []struct {
		name      string
		committed []byte // the key the keyring is sealed under
		keyFile   []byte // seal.key (nil: missing)
		nextFile  []byte // seal.key.next (nil: missing)
		temp      bool   // a torn temporary file from WriteKeyFile
		wantFile  []byte // seal.key after start
	}{
		{"crash while writing next", oldKey, oldKey, nil, true, oldKey},
		{"crash after next, before the commit", oldKey, oldKey, newKey, false, oldKey},
		{"crash after the commit, before the rename", newKey, oldKey, newKey, false, newKey},
		{"crash after the rename", newKey, newKey, nil, false, newKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "seal.key")
			c, _ := testCoreIn(t, dir, config.SealConfig{Type: "file", KeyFile: path}, func(st *bolt.DB) {
				if _, err := keyring.Open(context.Background(), st, bytes.Clone(tc.committed), seal.SaveOp(seal.Config{Type: "file"})); err != nil {
					t.Fatal(err)
				}
				for p, k := range map[string][]byte{path: tc.keyFile, path + ".next": tc.nextFile} {
					if k != nil {
						if err := seal.WriteKeyFile(p, k); err != nil {
							t.Fatal(err)
						}
					}
				}
				if tc.temp {
					os.WriteFile(filepath.Join(dir, ".seal.key.next.tmp-123"), []byte("02"), 0o600)
				}
			})
			if c.Sealed() {
				t.Fatal("the server stayed sealed")
			}
			if got, err := seal.ReadKeyFile(path); err != nil || !bytes.Equal(got, tc.wantFile) {
				t.Fatalf("seal.key after start = %x, %v; want %x", got, err, tc.wantFile)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".seal.key*.tmp-*")); len(left) > 0 {
				t.Fatalf("temporary key files left: %v", left)
			}
		})
	}
}
