package test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
	"github.com/strongroom/strongroom/internal/testenv"
)

// A rekey erases the keyring record sealed under the old root key: after the compaction it
// starts, no file in the data folder holds that record's bytes (with the old key file, they
// would open the current term key).
func TestRekey_ErasesTheOldKeyringRecord(t *testing.T) {
	cfg := writeConfig(t, "compact_delay: 200ms\n")
	srv := testenv.Start(t, &testenv.Options{Extra: []string{"--config", cfg}})
	srv.Stop()
	old := readRecord(t, filepath.Join(srv.DataDir, "strongroom.db"), keyring.RingKey)
	srv.StartAgain()

	cfgDir := t.TempDir()
	if _, errOut, err := cli(t, cfgDir, "login", "--server", srv.URL, "--ca-file", filepath.Join(srv.DataDir, "tls", "ca.pem"), "--service-principal",
		"--username", srv.Admin.ClientID, "--password", srv.Admin.ClientSecret, "--tenant", srv.Admin.TenantID); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut)
	}
	if _, errOut, err := cli(t, cfgDir, "operator", "rekey"); err != nil {
		t.Fatalf("operator rekey: %v\n%s", err, errOut)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		where := findInFolder(t, srv.DataDir, old)
		if where == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the keyring record sealed under the old root key is still in %s", where)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readRecord(t *testing.T, path, key string) []byte {
	t.Helper()
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return bytes.Clone(v)
}

// findInFolder names a file under dir that contains b, or "".
func findInFolder(t *testing.T, dir string, b []byte) string {
	t.Helper()
	found := ""
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" || d.Type()&fs.ModeSocket != 0 {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err == nil && bytes.Contains(raw, b) {
			found = p
		}
		return nil
	})
	return found
}
