package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// rollbackEnv is a service over a store the test also writes directly, as a writer of the
// store file (without the keys) can.
type rollbackEnv struct {
	t    *testing.T
	svc  *service.Service
	st   store.Store
	kr   *keyring.Keyring
	opts service.Options
	clk  *clock
	ctx  context.Context
}

func newRollbackEnv(t *testing.T, layout int) *rollbackEnv {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := testOptions()
	opts.Now = clk.Now
	svc, err := service.New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	mkVault(t, svc, actx, "kv-rb", 7, false)
	if err := svc.SetVaultLayout(actx, "kv-rb", layout); err != nil {
		t.Fatal(err)
	}
	return &rollbackEnv{t: t, svc: svc, st: st, kr: kr, opts: opts, clk: clk, ctx: actx}
}

func (e *rollbackEnv) set(name, value string) string {
	e.t.Helper()
	e.clk.Advance(time.Millisecond) // version ids carry the time
	sec, err := e.svc.SetSecret(e.ctx, "kv-rb", name, service.SecretInput{Value: &value})
	if err != nil {
		e.t.Fatal(err)
	}
	return sec.Version
}

func (e *rollbackEnv) disable(name, version string) {
	e.t.Helper()
	off := false
	if _, err := e.svc.UpdateSecret(e.ctx, "kv-rb", name, version, service.SecretUpdate{Enabled: &off}); err != nil {
		e.t.Fatal(err)
	}
}

// key finds the storage key of name's head ("") or of one of its versions, in either layout.
func (e *rollbackEnv) key(name, version string) string {
	e.t.Helper()
	up := strings.ToUpper(name)
	var found string
	if err := e.st.Scan(e.ctx, "v/", "", func(k string, _ []byte) bool {
		if version == "" && (strings.HasSuffix(k, "/n/"+up+"!~") || strings.HasSuffix(k, "/n/"+up)) ||
			version != "" && (strings.HasSuffix(k, "/n/"+up+"!"+version) || strings.HasSuffix(k, "/x/"+up+"/"+version)) {
			found = k
			return false
		}
		return true
	}); err != nil || found == "" {
		e.t.Fatalf("no record for %s/%s: %v", name, version, err)
	}
	return found
}

func (e *rollbackEnv) raw(key string) []byte {
	e.t.Helper()
	b, err := e.st.Get(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// putBack writes an older copy of a record over the current one, as the attacker does.
func (e *rollbackEnv) putBack(key string, raw []byte) {
	e.t.Helper()
	if err := e.st.Apply(e.ctx, []store.Op{store.Put(key, raw)}); err != nil {
		e.t.Fatal(err)
	}
}

func wantIntegrity(t *testing.T, what string, got string, err error) {
	t.Helper()
	var de *service.Error
	if !errors.Is(err, service.ErrIntegrity) || !errors.As(err, &de) || de.Code != "InternalServerError" || !strings.Contains(de.Message, "integrity check") {
		t.Fatalf("%s: got %q, %v; want the integrity error", what, got, err)
	}
	if got != "" || strings.Contains(err.Error(), "value-") {
		t.Fatalf("%s: a value was returned or named: %q, %v", what, got, err)
	}
}

// A writer of the store file who puts back an older copy of one record of a secret (its head,
// or one version's record) is refused on the next read that touches it: the old state is
// never served. Each case names what the old code served instead.
func TestService_SingleRecordRollbackRefused(t *testing.T) {
	cases := []struct {
		name string
		// run writes, captures one record, changes it through the service, puts the capture
		// back and reads; it returns what the read gave.
		run func(e *rollbackEnv) (string, error)
	}{
		{"head after a new version (older latest value)", func(e *rollbackEnv) (string, error) {
			e.set("a", "value-old")
			hk := e.key("a", "")
			old := e.raw(hk)
			e.set("a", "value-new")
			e.putBack(hk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "a", "")
			return s.Value, err // old code: "value-old"
		}},
		{"head after disabling the latest version", func(e *rollbackEnv) (string, error) {
			e.set("b", "value-b")
			hk := e.key("b", "")
			old := e.raw(hk)
			e.disable("b", "")
			e.putBack(hk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "b", "")
			return s.Value, err // old code: "value-b", though disabled
		}},
		{"head after delete (undeleted)", func(e *rollbackEnv) (string, error) {
			e.set("c", "value-c")
			hk := e.key("c", "")
			old := e.raw(hk)
			if _, err := e.svc.DeleteSecret(e.ctx, "kv-rb", "c"); err != nil {
				e.t.Fatal(err)
			}
			e.putBack(hk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "c", "")
			return s.Value, err // old code: "value-c", though deleted
		}},
		{"head after delete, listed", func(e *rollbackEnv) (string, error) {
			e.set("c2", "value-c2")
			hk := e.key("c2", "")
			old := e.raw(hk)
			if _, err := e.svc.DeleteSecret(e.ctx, "kv-rb", "c2"); err != nil {
				e.t.Fatal(err)
			}
			e.putBack(hk, old)
			p, err := e.svc.ListSecrets(e.ctx, "kv-rb", 25, "")
			if len(p.Items) > 0 {
				return p.Items[0].Name, err // old code: lists c2 as live
			}
			return "", err
		}},
		{"older version's record after update-attributes (re-enabled)", func(e *rollbackEnv) (string, error) {
			v1 := e.set("d", "value-d1")
			e.set("d", "value-d2")
			vk := e.key("d", v1)
			old := e.raw(vk)
			e.disable("d", v1)
			e.putBack(vk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "d", v1)
			return s.Value, err // old code: "value-d1", though disabled
		}},
		{"version updated while latest, rolled back once superseded", func(e *rollbackEnv) (string, error) {
			v1 := e.set("e", "value-e1")
			vk := e.key("e", v1)
			old := e.raw(vk)
			e.disable("e", v1) // while latest: the head pins it as its copy
			e.set("e", "value-e2")
			e.putBack(vk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "e", v1)
			return s.Value, err // old code: "value-e1", though disabled
		}},
		{"latest version's record after update-attributes, listed", func(e *rollbackEnv) (string, error) {
			v1 := e.set("f", "value-f")
			vk := e.key("f", v1)
			old := e.raw(vk)
			e.disable("f", v1)
			e.putBack(vk, old)
			p, err := e.svc.ListSecretVersions(e.ctx, "kv-rb", "f", 25, "")
			if len(p.Items) > 0 && p.Items[0].Enabled {
				return "enabled", err // old code: lists the version as enabled
			}
			return "", err
		}},
		{"a purged secret's version put back into the re-created name", func(e *rollbackEnv) (string, error) {
			v1 := e.set("g", "value-g-purged")
			vk := e.key("g", v1)
			old := e.raw(vk)
			if _, err := e.svc.DeleteSecret(e.ctx, "kv-rb", "g"); err != nil {
				e.t.Fatal(err)
			}
			if err := e.svc.PurgeDeletedSecret(e.ctx, "kv-rb", "g"); err != nil {
				e.t.Fatal(err)
			}
			e.set("g", "value-g-new")
			e.putBack(vk, old)
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "g", v1)
			return s.Value, err // old code: "value-g-purged"
		}},
		{"backup after a version's record rolled back", func(e *rollbackEnv) (string, error) {
			v1 := e.set("h", "value-h1")
			e.set("h", "value-h2")
			vk := e.key("h", v1)
			old := e.raw(vk)
			e.disable("h", v1)
			e.putBack(vk, old)
			blob, err := e.svc.BackupSecret(e.ctx, "kv-rb", "h")
			if blob != "" {
				return "a blob", err // old code: backs up the re-enabled version
			}
			return "", err
		}},
	}
	for _, layout := range []int{service.LayoutSplit, service.LayoutColocated} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("layout%d/%s", layout, c.name), func(t *testing.T) {
				got, err := c.run(newRollbackEnv(t, layout))
				wantIntegrity(t, c.name, got, err)
			})
		}
	}
}

// The purger must not destroy a live secret because a deleted copy of its head was put back.
func TestService_RollbackToDeletedHeadIsNotPurged(t *testing.T) {
	e := newRollbackEnv(t, service.LayoutColocated)
	e.set("p", "value-p")
	if _, err := e.svc.DeleteSecret(e.ctx, "kv-rb", "p"); err != nil {
		t.Fatal(err)
	}
	hk := e.key("p", "")
	deleted := e.raw(hk)
	if _, err := e.svc.RecoverDeletedSecret(e.ctx, "kv-rb", "p"); err != nil {
		t.Fatal(err)
	}
	current := e.raw(hk)
	e.putBack(hk, deleted)
	e.clk.Advance(8 * 24 * time.Hour)
	if n, _, err := e.svc.PurgeExpired(e.ctx); err != nil || n != 0 {
		t.Fatalf("purged %d secrets, %v; want none (old code: 1)", n, err)
	}
	e.putBack(hk, current)
	if s, err := e.svc.GetSecret(e.ctx, "kv-rb", "p", ""); err != nil || s.Value != "value-p" {
		t.Fatalf("after the purger: %q, %v; want the live secret", s.Value, err)
	}
}

// Reads racing writes of the same secret (new versions, updates of the latest and of an older
// version, delete and recover) never see a false rollback: a head and a record read across a
// write are read again.
func TestService_ConcurrentReadsSeeNoRollback(t *testing.T) {
	for _, layout := range []int{service.LayoutSplit, service.LayoutColocated} {
		t.Run(fmt.Sprint("layout", layout), func(t *testing.T) {
			e := newRollbackEnv(t, layout)
			v1 := e.set("race", "value-1")
			e.set("race", "value-2")
			var wg sync.WaitGroup
			done := make(chan struct{})
			fail := make(chan error, 16)
			wg.Add(1)
			go func() { // writer
				defer wg.Done()
				defer close(done)
				on, off := true, false
				for i := range 60 {
					val := fmt.Sprint("value-", i)
					var err error
					switch i % 5 {
					case 0:
						_, err = e.svc.SetSecret(e.ctx, "kv-rb", "race", service.SecretInput{Value: &val})
					case 1:
						_, err = e.svc.UpdateSecret(e.ctx, "kv-rb", "race", v1, service.SecretUpdate{Enabled: &off})
					case 2:
						_, err = e.svc.UpdateSecret(e.ctx, "kv-rb", "race", v1, service.SecretUpdate{Enabled: &on})
					case 3:
						_, err = e.svc.UpdateSecret(e.ctx, "kv-rb", "race", "", service.SecretUpdate{Tags: &map[string]string{"i": val}})
					case 4:
						if _, err = e.svc.DeleteSecret(e.ctx, "kv-rb", "race"); err == nil {
							_, err = e.svc.RecoverDeletedSecret(e.ctx, "kv-rb", "race")
						}
					}
					if err != nil {
						fail <- err
						return
					}
				}
			}()
			for range 2 { // readers
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						reads := []error{}
						_, err := e.svc.GetSecret(e.ctx, "kv-rb", "race", "")
						reads = append(reads, err)
						_, err = e.svc.GetSecret(e.ctx, "kv-rb", "race", v1)
						reads = append(reads, err)
						_, err = e.svc.ListSecretVersions(e.ctx, "kv-rb", "race", 25, "")
						reads = append(reads, err)
						_, err = e.svc.ListSecrets(e.ctx, "kv-rb", 25, "")
						reads = append(reads, err)
						for _, err := range reads {
							if errors.Is(err, service.ErrIntegrity) {
								fail <- err
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(fail)
			for err := range fail {
				t.Error(err)
			}
		})
	}
}

// restart builds a new service over the same store, as a server start or unseal does.
func (e *rollbackEnv) restart() {
	e.t.Helper()
	svc, err := service.New(context.Background(), e.st, e.kr, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
}

// A vault record put back alone (an older copy of arm/vault/<name>) is refused once it is
// loaded, at a start or when a cluster node applies it: the vault answers the integrity error
// instead of acting on the older settings, and the purger leaves it alone.
func TestService_VaultRecordRollbackRefused(t *testing.T) {
	const vk = "arm/vault/kv-rb"
	on := true
	cases := []struct {
		name string
		run  func(e *rollbackEnv) (string, error)
	}{
		{"purge protection turned on, older copy put back, restart", func(e *rollbackEnv) (string, error) {
			old := e.raw(vk)
			if _, err := e.svc.PatchVault(e.ctx, "rg", "kv-rb", nil, &service.VaultProperties{EnablePurgeProtection: &on}); err != nil {
				e.t.Fatal(err)
			}
			e.putBack(vk, old)
			e.restart()
			v, err := e.svc.GetVault(e.ctx, "rg", "kv-rb")
			if v != nil && !v.PurgeProtected() {
				return "unprotected", err // old code: the vault without purge protection
			}
			return "", err
		}},
		{"deleted copy put back over a recovered vault, restart, data plane", func(e *rollbackEnv) (string, error) {
			e.set("s", "value-s")
			if err := e.svc.DeleteVault(e.ctx, "rg", "kv-rb"); err != nil {
				e.t.Fatal(err)
			}
			old := e.raw(vk)
			if _, _, err := e.svc.PutVault(e.ctx, "rg", "kv-rb", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{CreateMode: ptr("recover")}}); err != nil {
				e.t.Fatal(err)
			}
			e.putBack(vk, old)
			e.restart()
			e.clk.Advance(8 * 24 * time.Hour)
			if _, n, err := e.svc.PurgeExpired(e.ctx); err != nil || n != 0 {
				return fmt.Sprintf("purged %d vaults", n), err // old code: purges the live vault
			}
			s, err := e.svc.GetSecret(e.ctx, "kv-rb", "s", "")
			return s.Value, err
		}},
		{"older copy applied on a cluster node (KeysApplied)", func(e *rollbackEnv) (string, error) {
			old := e.raw(vk)
			if _, err := e.svc.PatchVault(e.ctx, "rg", "kv-rb", nil, &service.VaultProperties{EnablePurgeProtection: &on}); err != nil {
				e.t.Fatal(err)
			}
			e.putBack(vk, old)
			if err := e.svc.KeysApplied(e.ctx, []string{vk}); err != nil {
				e.t.Fatal(err)
			}
			vs, err := e.svc.ListVaults(e.ctx, "")
			if len(vs) > 0 && !vs[0].PurgeProtected() {
				return "unprotected", err // old code: lists it without purge protection
			}
			return "", err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.run(newRollbackEnv(t, service.LayoutColocated))
			wantIntegrity(t, c.name, got, err)
		})
	}
}
