package service_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
)

// fingerprint returns the parts of a stored record that identify it on disk: for a sealed record
// (versions 2 and 3, docs/architecture.md) its wrapped data key and its ciphertext, for a
// root-sealed record (the keyring, version 1) its ciphertext. The plaintext is never on disk, so
// these are what must go.
func fingerprint(raw []byte) [][]byte {
	switch {
	case len(raw) > 77 && (raw[0] == 2 || raw[0] == 3): // version | term | wrapped key (60) | nonce (12) | ciphertext
		return [][]byte{bytes.Clone(raw[5:65]), bytes.Clone(raw[77:])}
	case len(raw) > 29 && raw[0] == 1: // 0x01 | nonce (12) | ciphertext
		return [][]byte{bytes.Clone(raw[13:])}
	}
	return [][]byte{bytes.Clone(raw[1:])} // a later format: the whole record
}

// capture adds the fingerprints of every record whose key starts with one of prefixes.
func (e *serviceEnv) capture(t *testing.T, into *[][]byte, prefixes ...string) {
	t.Helper()
	n := len(*into)
	err := e.st.Scan(e.ctx, "", "", func(key string, raw []byte) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(key, p) {
				*into = append(*into, fingerprint(raw)...)
				break
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(*into) == n {
		t.Fatalf("no record under %q", prefixes)
	}
}

// assertGone fails if any file in the data folder (store file, log segments, anything else)
// still holds one of the captured byte strings.
func (e *serviceEnv) assertGone(t *testing.T, gone [][]byte) {
	t.Helper()
	err := filepath.WalkDir(filepath.Dir(e.path), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, b := range gone {
			if bytes.Contains(data, b) {
				t.Errorf("destroyed record bytes (fingerprint %d of %d, %d bytes) still in %s", i+1, len(gone), len(b), filepath.Base(p))
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// vaultKeys returns the store prefix of a vault's records and its entry's key.
func (e *serviceEnv) vaultKeys(t *testing.T, rg, name string) []string {
	t.Helper()
	v, err := e.svc.GetVault(e.ctx, rg, name)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"v/" + v.ID + "/", "arm/vault/" + strings.ToLower(name)}
}

// Every path that destroys a secret or a vault erases it: after it (and the erasure it asks
// for) no file in the data folder holds the ciphertext or the wrapped data key of any record
// the secret ever had (each version, every head it overwrote), in the bbolt file's free pages
// or in the write-ahead log's segments. The store is a real bbolt file with a real log.
func TestService_Destroy_LeavesNoCiphertextInDataFolder(t *testing.T) {
	const vault, doomed = "kv-e", "doomed"
	deleteAndPurge := func(t *testing.T, e *serviceEnv, _ []byte) {
		if _, err := e.svc.DeleteSecret(e.ctx, vault, doomed); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.PurgeDeletedSecret(e.ctx, vault, doomed); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name       string
		softDelete bool
		wholeVault bool // the case destroys the vault, so its entry's record goes too
		// destroy destroys the secret doomed; snap is a store snapshot taken before it was written.
		destroy func(t *testing.T, e *serviceEnv, snap []byte)
		// erased is how many erasures the service must have asked for (the store erases by itself
		// on a restore).
		erased int
	}{
		{name: "hard delete (soft delete off)", destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if _, err := e.svc.DeleteSecret(e.ctx, vault, doomed); err != nil {
				t.Fatal(err)
			}
		}, erased: 1},
		{name: "purge", softDelete: true, destroy: deleteAndPurge, erased: 1},
		{name: "scheduled purge", softDelete: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if _, err := e.svc.DeleteSecret(e.ctx, vault, doomed); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(8 * 24 * time.Hour)
			if ns, _, err := e.svc.PurgeExpired(e.ctx); err != nil || ns != 1 {
				t.Fatalf("PurgeExpired = %d secrets, %v; want 1", ns, err)
			}
		}, erased: 1},
		{name: "vault purge", softDelete: true, wholeVault: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if err := e.svc.DeleteVault(e.ctx, "rg", vault); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.PurgeDeletedVault(e.ctx, "", vault); err != nil {
				t.Fatal(err)
			}
		}, erased: 1},
		{name: "scheduled vault purge", softDelete: true, wholeVault: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if err := e.svc.DeleteVault(e.ctx, "rg", vault); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(8 * 24 * time.Hour)
			if _, nv, err := e.svc.PurgeExpired(e.ctx); err != nil || nv != 1 {
				t.Fatalf("PurgeExpired = %d vaults, %v; want 1", nv, err)
			}
		}, erased: 1},
		{name: "vault delete (soft delete off)", wholeVault: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if err := e.svc.DeleteVault(e.ctx, "rg", vault); err != nil {
				t.Fatal(err)
			}
		}, erased: 1},
		{name: "resource group delete (soft delete off)", wholeVault: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			if err := e.svc.DeleteResourceGroup(e.ctx, "rg"); err != nil {
				t.Fatal(err)
			}
		}, erased: 1},
		{name: "snapshot restore", softDelete: true, destroy: func(t *testing.T, e *serviceEnv, snap []byte) {
			if err := e.st.RestoreLive(e.ctx, bytes.NewReader(snap)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "snapshot restore, snapshot with freed pages", softDelete: true, destroy: func(t *testing.T, e *serviceEnv, _ []byte) {
			// A delete whose erasure has not run yet (compact_delay) leaves the records in
			// free pages, and a snapshot copies free pages too; restoring it must not bring
			// them back.
			var ops []store.Op
			_ = e.st.Scan(e.ctx, "v/", "", func(key string, _ []byte) bool {
				if strings.Contains(key, "/DOOMED!") && !strings.HasSuffix(key, "!}") { // "}": the plaintext tip
					ops = append(ops, store.DeletePrefix(key)) // a prefix delete writes the file itself
				}
				return true
			})
			if err := e.st.Apply(e.ctx, ops); err != nil {
				t.Fatal(err)
			}
			if err := e.st.RestoreLive(e.ctx, bytes.NewReader(snapshotBytes(t, e))); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newServiceEnv(t)
			if _, _, err := e.svc.PutResourceGroup(e.ctx, "rg-keep", "eastus", nil); err != nil {
				t.Fatal(err)
			}
			p := service.VaultProperties{TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}}
			if tc.softDelete {
				p.SoftDeleteRetentionInDays = ptr(7)
			} else {
				p.EnableSoftDelete = ptr(false)
			}
			for _, vi := range []struct{ rg, name string }{{"rg", vault}, {"rg-keep", "kv-keep"}} {
				if _, _, err := e.svc.PutVault(e.ctx, vi.rg, vi.name, service.VaultInput{Location: "eastus", Properties: p}); err != nil {
					t.Fatal(err)
				}
			}
			keep := "keep"
			if _, err := e.svc.SetSecret(e.ctx, "kv-keep", "kept", service.SecretInput{Value: &keep}); err != nil {
				t.Fatal(err)
			}
			snap := snapshotBytes(t, e)
			var gone [][]byte
			prefixes := []string{"v/"} // every record of kv-e's secrets, found by name below
			if tc.wholeVault {
				prefixes = e.vaultKeys(t, "rg", vault)
				e.capture(t, &gone, prefixes[1])
			}
			// The second value spans overflow pages, more than a later small write reuses.
			for i, val := range []string{"first-" + strings.Repeat("a", 48), "second-" + strings.Repeat("b", 10<<10)} {
				if _, err := e.svc.SetSecret(e.ctx, vault, doomed, service.SecretInput{Value: &val}); err != nil {
					t.Fatal(err)
				}
				// Each write overwrites the head: capture every head the secret had.
				e.captureSecret(t, &gone, prefixes[0], i+1)
			}
			before := e.compactions
			tc.destroy(t, e, snap)
			if got := e.compactions - before; got != tc.erased {
				t.Errorf("the service asked for %d erasures, want %d", got, tc.erased)
			}
			e.assertGone(t, gone)
			if raw, err := e.st.Get(e.ctx, e.vaultKeys(t, "rg-keep", "kv-keep")[1]); err != nil || len(raw) == 0 {
				t.Fatalf("live vault after the destroy: %v", err)
			}
			if got, err := e.svc.GetSecret(e.ctx, "kv-keep", "kept", ""); err != nil || got.Value != "keep" {
				t.Fatalf("live secret after the destroy: %v", err)
			}
		})
	}
}

// captureSecret captures every record of the secret doomed under prefix (want: how many
// versions it has now, so a capture that missed one fails).
func (e *serviceEnv) captureSecret(t *testing.T, into *[][]byte, prefix string, want int) {
	t.Helper()
	versions := 0
	err := e.st.Scan(e.ctx, prefix, "", func(key string, raw []byte) bool {
		if strings.Contains(key, "/DOOMED!") && !strings.HasSuffix(key, "!}") { // "}": the plaintext tip
			*into = append(*into, fingerprint(raw)...)
			if !strings.HasSuffix(key, "!~") {
				versions++
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if versions != want {
		t.Fatalf("captured %d versions of doomed, want %d", versions, want)
	}
}

func snapshotBytes(t *testing.T, e *serviceEnv) []byte {
	t.Helper()
	s, err := e.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ptr[T any](v T) *T { return &v }

// Revoking a backup key and retiring keyring terms destroy key material too: every earlier
// keyring record holds it (sealed under the same root key) and, after a rewrap, freed pages hold
// the data keys wrapped under the retired term. Both must leave the data folder.
func TestService_KeyDestruction_LeavesNoOldKeyringInDataFolder(t *testing.T) {
	const keyringKey = "sys/keyring"
	cases := []struct {
		name    string
		destroy func(t *testing.T, e *serviceEnv, gone *[][]byte)
	}{
		{"backup key revoke", func(t *testing.T, e *serviceEnv, gone *[][]byte) {
			if _, err := e.svc.RotateBackupKey(e.ctx); err != nil {
				t.Fatal(err)
			}
			e.capture(t, gone, keyringKey)
			if err := e.svc.RevokeBackupKey(e.ctx, 1); err != nil {
				t.Fatal(err)
			}
		}},
		{"term retire", func(t *testing.T, e *serviceEnv, gone *[][]byte) {
			if _, err := e.svc.RotateKeyring(e.ctx); err != nil {
				t.Fatal(err)
			}
			e.capture(t, gone, keyringKey)
			// A rewrap keeps each ciphertext and replaces its wrapped data key.
			_ = e.st.Scan(e.ctx, "v/", "", func(key string, raw []byte) bool {
				if strings.HasSuffix(key, "}") {
					return true // a tip: plaintext, not sealed
				}
				*gone = append(*gone, bytes.Clone(raw[5:65]))
				return true
			})
			if p, err := e.svc.Rewrap(e.ctx, 0); err != nil || !p.Done {
				t.Fatalf("rewrap = %+v, %v", p, err)
			}
			if retired, err := e.svc.RetireOldTerms(e.ctx); err != nil || len(retired) != 1 {
				t.Fatalf("retire = %v, %v", retired, err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newServiceEnv(t)
			mkVault(t, e.svc, e.ctx, "kv-k", 7, false)
			keep := "keep"
			if _, err := e.svc.SetSecret(e.ctx, "kv-k", "kept", service.SecretInput{Value: &keep}); err != nil {
				t.Fatal(err)
			}
			var gone [][]byte
			e.capture(t, &gone, keyringKey)
			before := e.compactions
			tc.destroy(t, e, &gone)
			if got := e.compactions - before; got != 1 {
				t.Errorf("the service asked for %d erasures, want 1", got)
			}
			e.assertGone(t, gone)
			if got, err := e.svc.GetSecret(e.ctx, "kv-k", "kept", ""); err != nil || got.Value != "keep" {
				t.Fatalf("live secret after the destroy: %v", err)
			}
		})
	}
}
