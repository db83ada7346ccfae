package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteKeyFile_ReplacesWholeFileWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	for _, k := range [][]byte{bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)} {
		if err := WriteKeyFile(path, k); err != nil {
			t.Fatal(err)
		}
		got, err := ReadKeyFile(path)
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("read back %x, %v", got, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", fi.Mode())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".seal.key.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestPromoteKeyFile(t *testing.T) {
	want, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	cases := []struct {
		name      string
		next, cur []byte // nil: missing
		wantErr   bool
	}{
		{"next renamed over the key file", want, other, false},
		{"a node sharing the file promoted it first", nil, want, false},
		{"next missing and the file holds another key", nil, other, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seal.key")
			for p, k := range map[string][]byte{path: tc.cur, path + ".next": tc.next} {
				if k != nil {
					if err := WriteKeyFile(p, k); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := promoteKeyFile(path+".next", path, want)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got, _ := ReadKeyFile(path); !bytes.Equal(got, want) {
				t.Fatalf("key file holds %x", got)
			}
			if _, err := os.Stat(path + ".next"); err == nil {
				t.Fatal(".next still there")
			}
		})
	}
}

// Moved from keyring (TestFileSeal_CreatesThenReuses): the key file is created on first use and
// reused after.
func TestReadOrCreateKeyFile_CreatesThenReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	k1, err := readOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := readOrCreateKeyFile(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second RootKey = %x, %v; want %x", k2, err, k1)
	}
}
