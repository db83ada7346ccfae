package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
	"github.com/strongroom/strongroom/internal/store/storetest"
)

func openWAL(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.OpenWithWAL(path, bolt.WALOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// checkpointEvery makes checkpoints frequent for the rest of the test.
func checkpointEvery(t *testing.T, n int64) {
	old := bolt.SetCheckpointAt(n)
	t.Cleanup(func() { bolt.SetCheckpointAt(old) })
}

func TestWAL_Conformance(t *testing.T) {
	for _, c := range []struct {
		name       string
		checkpoint int64
	}{{"rare checkpoints", 8 << 20}, {"checkpoint every few batches", 200}} {
		t.Run(c.name, func(t *testing.T) {
			checkpointEvery(t, c.checkpoint)
			storetest.Exercise(t, func(t *testing.T) store.Store {
				db := openWAL(t, filepath.Join(t.TempDir(), "data.db"))
				t.Cleanup(func() { db.Close() })
				return db
			})
		})
	}
}

// model is what the store must hold: the effect of every acknowledged batch.
type model struct {
	mu sync.Mutex
	kv map[string]string
}

func (m *model) apply(ops []store.Op) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut:
			m.kv[op.Key] = string(op.Value)
		case store.OpDelete:
			delete(m.kv, op.Key)
		}
	}
}

// check compares every Get and a prefix scan of the store with the model.
func (m *model) check(t *testing.T, s store.Store, keys []string) {
	t.Helper()
	ctx := context.Background()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		v, err := s.Get(ctx, k)
		want, ok := m.kv[k]
		switch {
		case ok && (err != nil || string(v) != want):
			t.Fatalf("Get(%s) = %q, %v; want %q", k, v, err, want)
		case !ok && !errors.Is(err, store.ErrNotFound):
			t.Fatalf("Get(%s) = %q, %v; want not found", k, v, err)
		}
	}
	var want []string
	for k, v := range m.kv {
		want = append(want, k+"="+v)
	}
	sort.Strings(want)
	var got []string
	if err := s.Scan(ctx, "k/", "", func(k string, v []byte) bool { got = append(got, k+"="+string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Scan = %v\nwant %v", got, want)
	}
}

// Random puts and deletes over a small key space, with a checkpoint every few batches: after
// every batch, reads through the overlay (new memtable, memtable being checkpointed, file) agree
// with the model, and after a crash-like stop and a reopen (log replay) they still do.
func TestWAL_ReadsAndReplayMatchModel(t *testing.T) {
	checkpointEvery(t, 300)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	db := openWAL(t, path)
	m := &model{kv: map[string]string{}}
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("k/%02d", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 600 {
		var ops []store.Op
		for range 1 + rng.IntN(3) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(4) == 0 {
				ops = append(ops, store.Delete(k))
			} else {
				ops = append(ops, store.Put(k, []byte(fmt.Sprintf("v%d-%d", i, rng.IntN(1000)))))
			}
		}
		if err := db.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
		m.apply(ops)
		if i%25 == 0 {
			m.check(t, db, keys)
		}
	}
	m.check(t, db, keys)
	db.Abandon()
	db = openWAL(t, path)
	defer db.Close()
	m.check(t, db, keys)
}

// Concurrent writers (guarded and blind), a crash-like stop, a torn last record: every batch
// acknowledged before the stop is there after the reopen, except the torn one.
func TestWAL_CrashRecovery(t *testing.T) {
	for _, c := range []struct {
		name       string
		checkpoint int64
		tear       bool
	}{
		{"no checkpoint before the crash", 8 << 20, false},
		{"checkpoints during the writes", 2000, false},
		{"torn last record", 8 << 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkpointEvery(t, c.checkpoint)
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "data.db")
			db := openWAL(t, path)
			m := &model{kv: map[string]string{}}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 100 {
						k := fmt.Sprintf("k/%d-%02d", w, i%30)
						ops := []store.Op{store.Put(k, []byte(fmt.Sprintf("w%d-%d", w, i)))}
						if i%7 == 6 {
							ops = []store.Op{store.Delete(k)}
						}
						if err := db.Apply(ctx, ops); err != nil {
							t.Error(err)
							return
						}
						m.apply(ops)
					}
				}()
			}
			wg.Wait()
			tail := []store.Op{store.Put("k/tail", []byte("TORN-RECORD-VALUE"))}
			if err := db.Apply(ctx, tail); err != nil {
				t.Fatal(err)
			}
			if !c.tear {
				m.apply(tail)
			}
			db.Abandon()
			if c.tear {
				tearRecord(t, path+".wal", []byte("TORN-RECORD-VALUE"))
			}
			db = openWAL(t, path)
			defer db.Close()
			var keys []string
			for w := range 8 {
				for i := range 30 {
					keys = append(keys, fmt.Sprintf("k/%d-%02d", w, i))
				}
			}
			m.check(t, db, append(keys, "k/tail"))
			// The reopened store keeps logging on top of the replayed state.
			if err := db.Apply(ctx, []store.Op{store.RequireAbsent("k/new"), store.Put("k/new", []byte("x"))}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A crash after a checkpoint has committed into the file but before its segment is recycled:
// the reopened store replays the rest, skips the checkpointed segment, and keeps logging and
// recycling segments normally afterwards.
func TestWAL_CrashBetweenCheckpointAndRecycle(t *testing.T) {
	checkpointEvery(t, 600)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	db := openWAL(t, path)
	m := &model{kv: map[string]string{}}
	write := func(db *bolt.DB, i int) error {
		ops := []store.Op{store.Put(fmt.Sprintf("k/%03d", i%40), []byte(fmt.Sprintf("value-%d", i)))}
		if err := db.Apply(ctx, ops); err != nil {
			return err
		}
		m.apply(ops)
		return nil
	}
	for i := range 30 { // a few ordinary checkpoints first
		if err := write(db, i); err != nil {
			t.Fatal(err)
		}
	}
	restore := bolt.FailAfterCheckpointCommit(errors.New("injected crash"))
	refused := false
	for i := 30; i < 200 && !refused; i++ {
		refused = write(db, i) != nil // the failed checkpoint stops writes
	}
	restore()
	if !refused || db.Failure() == nil {
		t.Fatalf("writes refused %t, failure %v: want the failed checkpoint to stop writes", refused, db.Failure())
	}
	db.Abandon()
	var keys []string
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("k/%03d", i))
	}
	db = openWAL(t, path)
	if db.Failure() != nil {
		t.Fatalf("reopened store reports %v", db.Failure())
	}
	m.check(t, db, keys)
	for i := 200; i < 400; i++ { // many more checkpoints and recycled segments
		if err := write(db, i); err != nil {
			t.Fatal(err)
		}
	}
	db.Abandon()
	db = openWAL(t, path)
	defer db.Close()
	m.check(t, db, keys)
}

// tearRecord damages the log record holding marker, as a write torn by a power cut would.
func tearRecord(t *testing.T, dir string, marker []byte) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(raw, marker); i >= 0 {
			raw[i+3] ^= 0xff
			if err := os.WriteFile(p, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("record not found in the log")
}

// After a purge and a compaction no byte of the deleted value is left anywhere in the store's
// files, the log's segments included.
func TestWAL_CompactScrubsLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openWAL(t, filepath.Join(dir, "data.db"))
	defer db.Close()
	canary := bytes.Repeat([]byte("PURGED-CANARY-"), 16)
	if err := db.Apply(ctx, []store.Op{store.Put("k/gone", canary), store.Put("k/kept", []byte("live"))}); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, []store.Op{store.Delete("k/gone")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte("PURGED-CANARY-")) {
			t.Errorf("%s still holds the deleted value after compaction", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(ctx, "k/kept"); err != nil || string(v) != "live" {
		t.Fatalf("live record after compaction: %q %v", v, err)
	}
}

// A snapshot of a store with a log holds every acknowledged write, including those not yet
// checkpointed; restoring it live into another logged store, then crashing, replays nothing
// from before the restore.
func TestWAL_SnapshotAndLiveRestore(t *testing.T) {
	ctx := context.Background()
	src := openWAL(t, filepath.Join(t.TempDir(), "src.db"))
	defer src.Close()
	if err := src.Apply(ctx, []store.Op{store.Put("k/snap", []byte("yes"))}); err != nil {
		t.Fatal(err)
	}
	file := snapshotOf(t, src)

	path := filepath.Join(t.TempDir(), "dst.db")
	dst := openWAL(t, path)
	if err := dst.Apply(ctx, []store.Op{store.Put("k/old", []byte("x"))}); err != nil {
		t.Fatal(err)
	}
	if err := dst.RestoreLive(ctx, bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := dst.Apply(ctx, []store.Op{store.Put("k/after", []byte("1"))}); err != nil {
		t.Fatal(err)
	}
	dst.Abandon()
	dst = openWAL(t, path)
	defer dst.Close()
	m := &model{kv: map[string]string{"k/snap": "yes", "k/after": "1"}}
	m.check(t, dst, []string{"k/snap", "k/after", "k/old"})
}
