package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// countingStore is a real store that counts what its reader asks of it: point reads, scans and
// the keys scans hand over.
type countingStore struct {
	store.Store
	mu                  sync.Mutex
	gets, scans, visits int
	gotKeys             []string
	// beforeApply, if set, runs before each batch is applied (and may write itself).
	beforeApply func(ops []store.Op)
	// scanErr, if set, fails the scans of the prefixes it returns an error for.
	scanErr func(prefix string) error
}

func (c *countingStore) Apply(ctx context.Context, ops []store.Op) error {
	c.mu.Lock()
	hook := c.beforeApply
	c.mu.Unlock()
	if hook != nil {
		hook(ops)
	}
	return c.Store.Apply(ctx, ops)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	c.gets++
	c.gotKeys = append(c.gotKeys, key)
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) bool) error {
	c.mu.Lock()
	c.scans++
	fail := c.scanErr
	c.mu.Unlock()
	if fail != nil {
		if err := fail(prefix); err != nil {
			return err
		}
	}
	return c.Store.Scan(ctx, prefix, after, func(k string, v []byte) bool {
		c.mu.Lock()
		c.visits++
		c.mu.Unlock()
		return fn(k, v)
	})
}

func (c *countingStore) reset() {
	c.mu.Lock()
	c.gets, c.scans, c.visits, c.gotKeys = 0, 0, 0, nil
	c.mu.Unlock()
}

func (c *countingStore) counts() (gets, scans, visits int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, c.scans, c.visits
}

// dueEnv is a service over a counting store the test may also write directly.
type dueEnv struct {
	t    testing.TB
	svc  *service.Service
	st   *countingStore
	kr   *keyring.Keyring
	opts service.Options
	clk  *clock
	ctx  context.Context
}

func newDueEnv(t testing.TB) *dueEnv {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &countingStore{Store: db}
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
	return &dueEnv{t: t, svc: svc, st: st, kr: kr, opts: opts, clk: clk, ctx: actx}
}

// dueKeys lists the purge-due index.
func (e *dueEnv) dueKeys() []string {
	e.t.Helper()
	return listKeys(e.t, e, "sys/purge-due/")
}

// listKeys lists the keys under prefix, read past the counting.
func listKeys(t testing.TB, e *dueEnv, prefix string) []string {
	t.Helper()
	var keys []string
	if err := e.st.Store.Scan(e.ctx, prefix, "", func(k string, _ []byte) bool {
		keys = append(keys, k)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// vaultID finds a vault's internal id from its tip key.
func (e *dueEnv) vaultID(vault, secret string) string {
	e.t.Helper()
	var id string
	up := "/n/" + strings.ToUpper(secret) + "!~"
	if err := e.st.Store.Scan(e.ctx, "v/", "", func(k string, _ []byte) bool {
		if strings.HasSuffix(k, up) {
			id = strings.Split(k, "/")[1]
			return false
		}
		return true
	}); err != nil || id == "" {
		e.t.Fatalf("no head of %s/%s: %v", vault, secret, err)
	}
	return id
}

func (e *dueEnv) put(key string, value []byte) {
	e.t.Helper()
	if err := e.st.Store.Apply(e.ctx, []store.Op{store.Put(key, value)}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dueEnv) purge(wantSecrets, wantVaults int) {
	e.t.Helper()
	ns, nv, err := e.svc.PurgeExpired(e.ctx)
	if err != nil || ns != wantSecrets || nv != wantVaults {
		e.t.Fatalf("PurgeExpired = %d secrets, %d vaults, %v; want %d, %d", ns, nv, err, wantSecrets, wantVaults)
	}
}

// setAndDelete writes and soft-deletes names, 16 at a time so the store groups the commits.
func (e *dueEnv) setAndDelete(vault string, names []string) {
	e.t.Helper()
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				v := "value-" + n
				if _, err := e.svc.SetSecret(e.ctx, vault, n, service.SecretInput{Value: &v}); err != nil {
					e.t.Error(err)
				} else if _, err := e.svc.DeleteSecret(e.ctx, vault, n); err != nil {
					e.t.Error(err)
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// A pass reads the index entries that are due and the records they name, not the deleted
// secrets that are not due yet: with 2,000 of those and 3 due, it reads O(3).
func TestService_PurgeExpired_ReadsOnlyWhatIsDue(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-due", 7, false)
	e.setAndDelete("kv-due", names("due", 3))
	e.clk.Advance(24 * time.Hour)
	e.setAndDelete("kv-due", names("later", 2000))
	e.purge(0, 0) // the first pass writes the backfill marker (nothing to backfill here)

	e.clk.Advance(6 * 24 * time.Hour)
	e.st.reset()
	e.purge(3, 0)
	gets, scans, visits := e.st.counts()
	// The marker, then each due secret's head and tip; one scan stopping at the first entry
	// that is not due.
	if gets > 1+3*2 || scans > 1 || visits > 3+1 {
		t.Fatalf("a pass with 3 due of 2,003 deleted: %d point reads (%v), %d scans visiting %d keys; want <= 7, 1, 4",
			gets, e.st.gotKeys, scans, visits)
	}
	if got := len(e.dueKeys()); got != 2000 {
		t.Fatalf("%d index entries left, want 2000", got)
	}
	e.st.reset()
	e.purge(0, 0)
	if gets, scans, visits := e.st.counts(); gets > 1 || scans > 1 || visits > 1 {
		t.Fatalf("an idle pass: %d point reads, %d scans visiting %d keys; want 1, 1, 1", gets, scans, visits)
	}
	e.clk.Advance(24 * time.Hour)
	e.purge(2000, 0) // more than one chunk of the index
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index after purging everything: %v", got)
	}
}

// Recover removes the entry in its batch; an entry that is stale or put back (a replay) names
// a live secret, which the purger reads, leaves alone and drops the entry of.
func TestService_PurgeDueIndex_StaleEntriesDropped(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-st", 7, false)
	e.setAndDelete("kv-st", []string{"back", "gone"})
	entries := e.dueKeys()
	if len(entries) != 2 || !strings.Contains(entries[0], "/s/") || !strings.HasSuffix(entries[0], "/BACK") {
		t.Fatalf("index after two deletes: %v", entries)
	}
	if _, err := e.svc.RecoverDeletedSecret(e.ctx, "kv-st", "back"); err != nil {
		t.Fatal(err)
	}
	if got := e.dueKeys(); len(got) != 1 || got[0] != entries[1] {
		t.Fatalf("index after recovering back: %v, want [%s]", got, entries[1])
	}
	if err := e.svc.PurgeDeletedSecret(e.ctx, "kv-st", "gone"); err != nil {
		t.Fatal(err)
	}
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index after purging gone: %v", got)
	}
	// Replays of both entries and a forged one for a live secret that was never deleted.
	v := "live"
	if _, err := e.svc.SetSecret(e.ctx, "kv-st", "never", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(entries[0], "/BACK", "/NEVER", 1)
	for _, k := range append(entries, forged) {
		e.put(k, []byte{1})
	}
	e.clk.Advance(8 * 24 * time.Hour)
	e.purge(0, 0)
	for _, n := range []string{"back", "never"} {
		if _, err := e.svc.GetSecret(e.ctx, "kv-st", n, ""); err != nil {
			t.Fatalf("%s after the purger ran on stale entries: %v", n, err)
		}
	}
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("stale entries left: %v", got)
	}
	// An entry of a vault that is gone is dropped too.
	e.put(strings.Replace(entries[0], e.vaultID("kv-st", "back"), "00000000deadbeef", 1), []byte{1})
	e.purge(0, 0)
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("entry of a purged vault left: %v", got)
	}
}

// A deleted copy of a recovered secret's head put back with its entry: the head fails its
// rollback check, so the purger neither purges it nor forgets the entry.
func TestService_PurgeDueIndex_ReplayWithRolledBackHeadNotPurged(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-rb", 7, false)
	e.setAndDelete("kv-rb", []string{"p"})
	entry := e.dueKeys()[0]
	hk := "v/" + e.vaultID("kv-rb", "p") + "/n/P!~"
	deleted, err := e.st.Store.Get(e.ctx, hk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RecoverDeletedSecret(e.ctx, "kv-rb", "p"); err != nil {
		t.Fatal(err)
	}
	current, err := e.st.Store.Get(e.ctx, hk)
	if err != nil {
		t.Fatal(err)
	}
	e.put(hk, deleted)
	e.put(entry, []byte{1})
	e.clk.Advance(8 * 24 * time.Hour)
	e.purge(0, 0)
	if got := e.dueKeys(); len(got) != 1 {
		t.Fatalf("index: %v, want the entry kept", got)
	}
	e.put(hk, current)
	e.purge(0, 0) // now stale against the live head: dropped
	if s, err := e.svc.GetSecret(e.ctx, "kv-rb", "p", ""); err != nil || s.Value != "value-p" {
		t.Fatalf("after the purger: %q, %v; want the live secret", s.Value, err)
	}
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index: %v, want empty", got)
	}
}

// Deleted vaults go through the index: delete writes the entry, recover drops it, and a pass
// after the retention purges the vault and its entry (and a replayed one names a live vault).
func TestService_PurgeDueIndex_Vaults(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-v", 7, true)
	if err := e.svc.DeleteVault(e.ctx, "rg", "kv-v"); err != nil {
		t.Fatal(err)
	}
	first := e.dueKeys()
	if len(first) != 1 || !strings.Contains(first[0], "/v/") || !strings.HasSuffix(first[0], "/kv-v") {
		t.Fatalf("index after a vault delete: %v", first)
	}
	if _, _, err := e.svc.PutVault(e.ctx, "rg", "kv-v", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{CreateMode: ptr("recover")}}); err != nil {
		t.Fatal(err)
	}
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index after a vault recover: %v", got)
	}
	e.put(first[0], []byte{1}) // replayed
	e.clk.Advance(8 * 24 * time.Hour)
	e.purge(0, 0)
	if _, err := e.svc.GetVault(e.ctx, "rg", "kv-v"); err != nil {
		t.Fatalf("recovered vault after a replayed entry: %v", err)
	}
	if err := e.svc.DeleteVault(e.ctx, "rg", "kv-v"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(7*24*time.Hour - time.Second)
	e.purge(0, 0)
	e.clk.Advance(time.Second)
	e.purge(0, 1)
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index after the vault purge: %v", got)
	}
	if ok, _, _, _ := e.svc.NameAvailable(e.ctx, "kv-v"); !ok {
		t.Fatal("purged vault name still reserved")
	}
}

// Records deleted before the index existed (no entries, no marker) are indexed by the first
// pass, once: later passes read the marker only, and the backfilled entries purge on time.
func TestService_PurgeDueIndex_BackfillRunsOnce(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-old", 7, false)
	mkVault(t, e.svc, e.ctx, "kv-gone", 7, false)
	e.setAndDelete("kv-old", []string{"a", "b"})
	v := "live"
	if _, err := e.svc.SetSecret(e.ctx, "kv-old", "c", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteVault(e.ctx, "rg", "kv-gone"); err != nil {
		t.Fatal(err)
	}
	want := e.dueKeys()
	if len(want) != 3 {
		t.Fatalf("index: %v", want)
	}
	oldID := e.vaultID("kv-old", "c")
	deleted := listKeys(t, e, "v/"+oldID+"/d/")
	if len(deleted) != 2 {
		t.Fatalf("deleted-secrets index: %v", deleted)
	}
	// As a store written before the indexes: no entries and no marker.
	if err := e.st.Store.Apply(e.ctx, []store.Op{store.DeletePrefix("sys/purge-due"), store.DeletePrefix("v/" + oldID + "/d/")}); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), e.st, e.kr, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.purge(0, 0)
	if got := e.dueKeys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("backfilled index %v, want %v", got, want)
	}
	if got := listKeys(t, e, "v/"+oldID+"/d/"); strings.Join(got, " ") != strings.Join(deleted, " ") {
		t.Fatalf("backfilled deleted-secrets index %v, want %v", got, deleted)
	}
	if _, err := e.st.Store.Get(e.ctx, "sys/purge-due-backfilled"); err != nil {
		t.Fatalf("marker: %v", err)
	}
	e.st.reset()
	e.purge(0, 0)
	if gets, _, visits := e.st.counts(); gets != 1 || visits > 1 {
		t.Fatalf("the pass after the backfill: %d point reads, %d keys scanned; want 1, <= 1", gets, visits)
	}
	e.clk.Advance(7 * 24 * time.Hour)
	e.purge(2, 1)
	if _, err := e.svc.GetSecret(e.ctx, "kv-old", "c", ""); err != nil {
		t.Fatalf("live secret after the purge: %v", err)
	}
}

// With Options.Leads set (a cluster node), a purger tick passes only while the node leads.
func TestService_RunPurger_OnlyWhileLeading(t *testing.T) {
	e := newDueEnv(t)
	leads := false
	e.opts.Leads = func() bool { return leads }
	svc, err := service.New(context.Background(), e.st, e.kr, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	mkVault(t, e.svc, e.ctx, "kv-lead", 7, false)
	e.setAndDelete("kv-lead", []string{"x"})
	e.clk.Advance(7 * 24 * time.Hour)
	if e.svc.PurgeTick(e.ctx, slog.Default()) {
		t.Fatal("a follower's tick ran a pass")
	}
	if _, err := e.svc.GetDeletedSecret(e.ctx, "kv-lead", "x"); err != nil {
		t.Fatalf("purged by a follower's tick: %v", err)
	}
	leads = true
	if !e.svc.PurgeTick(e.ctx, slog.Default()) {
		t.Fatal("the leader's tick did not run")
	}
	if _, err := e.svc.GetDeletedSecret(e.ctx, "kv-lead", "x"); !service.IsNotFound(err) {
		t.Fatalf("not purged by the leader's tick: %v", err)
	}
}

// The purger destroys due secrets many to a batch; when one of them is recovered between the
// purger's read and its batch, the batch is refused and retried one by one: the recovered
// secret stays and the others go.
func TestService_PurgeExpired_BatchWithARecoveredSecret(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-batch", 7, false)
	e.setAndDelete("kv-batch", names("b", 10))
	e.clk.Advance(7 * 24 * time.Hour)
	var once sync.Once
	e.st.beforeApply = func(ops []store.Op) {
		guards := 0
		for _, op := range ops {
			if op.Kind == store.OpRequireEqual {
				guards++
			}
		}
		if guards > 1 {
			once.Do(func() {
				if _, err := e.svc.RecoverDeletedSecret(e.ctx, "kv-batch", "b-00004"); err != nil {
					t.Error(err)
				}
			})
		}
	}
	e.purge(9, 0)
	e.st.beforeApply = nil
	if s, err := e.svc.GetSecret(e.ctx, "kv-batch", "b-00004", ""); err != nil || s.Value != "value-b-00004" {
		t.Fatalf("recovered secret after the purge: %q, %v", s.Value, err)
	}
	if _, err := e.svc.GetDeletedSecret(e.ctx, "kv-batch", "b-00005"); !service.IsNotFound(err) {
		t.Fatalf("b-00005 not purged: %v", err)
	}
	if got := e.dueKeys(); len(got) != 0 {
		t.Fatalf("index after the purge: %v", got)
	}
}

// A backfill that fails (here: one vault's heads cannot be scanned) does not stop the pass:
// what is indexed is purged, the error is reported, and the marker waits for a backfill that
// completes.
func TestService_PurgeExpired_BackfillFailureStillPurgesIndexed(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-bad", 7, false)
	mkVault(t, e.svc, e.ctx, "kv-good", 7, false)
	e.setAndDelete("kv-bad", []string{"x"})
	badPrefix := "v/" + e.vaultID("kv-bad", "x") + "/n/"
	e.setAndDelete("kv-good", []string{"y"})
	e.clk.Advance(7 * 24 * time.Hour)
	e.st.mu.Lock()
	e.st.scanErr = func(prefix string) error {
		if prefix == badPrefix {
			return errors.New("injected scan failure")
		}
		return nil
	}
	e.st.mu.Unlock()
	ns, _, err := e.svc.PurgeExpired(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "injected scan failure") || ns != 2 {
		t.Fatalf("PurgeExpired = %d secrets, %v; want both indexed secrets purged and the backfill error", ns, err)
	}
	if _, err := e.st.Store.Get(e.ctx, "sys/purge-due-backfilled"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("marker after a failed backfill: %v", err)
	}
	e.st.mu.Lock()
	e.st.scanErr = nil
	e.st.mu.Unlock()
	e.purge(0, 0)
	if _, err := e.st.Store.Get(e.ctx, "sys/purge-due-backfilled"); err != nil {
		t.Fatalf("marker after the backfill completed: %v", err)
	}
}
