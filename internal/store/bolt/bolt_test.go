package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
	"github.com/strongroom/strongroom/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestDB_Conformance(t *testing.T) { storetest.Exercise(t, openTemp) }

func TestDB_Reopen_KeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(context.Background(), []store.Op{store.Put("k", []byte("v"))}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Get(context.Background(), "k")
	if err != nil || string(v) != "v" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
}

// BenchmarkDB_Apply measures durable single-op batches under parallel load, where group commit
// folds many batches into one fsync.
func BenchmarkDB_Apply(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 100)
	b.SetParallelism(32)
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			key := fmt.Sprintf("k/%p/%d", &n, i)
			if err := db.Apply(context.Background(), []store.Op{store.Put(key, val)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDB_SecretWrites is the store's share of a secret write under the benchmark's load:
// 64 writers over 1,000 names, each reading the head, then one batch that guards the head,
// adds a version and replaces the head (sealed sizes as measured: ~450 and ~520 bytes), with
// the service's two key layouts (internal/service/secrets.go), committed as bbolt transactions
// (Open, the Raft state machine's mode) or through the write-ahead log (OpenWithWAL, the
// single-node server's).
func BenchmarkDB_SecretWrites(b *testing.B) {
	layouts := []struct {
		name          string
		head, version func(int) string
	}{
		{"split",
			func(i int) string { return fmt.Sprintf("v/0123456789abcdef0123456789abcdef/n/PERF-%04d", i) },
			func(i int) string {
				return fmt.Sprintf("v/0123456789abcdef0123456789abcdef/x/PERF-%04d/%032x", i, rand.Uint64())
			}},
		{"colocated",
			func(i int) string { return fmt.Sprintf("v/0123456789abcdef0123456789abcdef/n/PERF-%04d!~", i) },
			func(i int) string {
				return fmt.Sprintf("v/0123456789abcdef0123456789abcdef/n/PERF-%04d!%012x%020x", i, time.Now().UnixMilli(), rand.Uint64())
			}},
	}
	modes := []struct {
		name string
		open func(string) (*bolt.DB, error)
	}{{"file", bolt.Open}, {"wal", func(p string) (*bolt.DB, error) { return bolt.OpenWithWAL(p, bolt.WALOptions{}) }}}
	for _, l := range layouts {
		for _, m := range modes {
			b.Run(l.name+"/"+m.name, func(b *testing.B) { benchSecretWrites(b, m.open, l.head, l.version) })
		}
	}
}

func benchSecretWrites(b *testing.B, open func(string) (*bolt.DB, error), head, version func(int) string) {
	ctx := context.Background()
	db, err := open(filepath.Join(b.TempDir(), "data.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const names = 1000
	for i := range names {
		if err := db.Apply(ctx, []store.Op{store.Put(head(i), randBytes(520)), store.Put(version(i), randBytes(450))}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(32)
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := rand.IntN(names)
			old, err := db.Get(ctx, head(i))
			if err != nil {
				b.Error(err)
				return
			}
			err = db.Apply(ctx, []store.Op{store.RequireEqual(head(i), old), store.Put(version(i), randBytes(450)), store.Put(head(i), randBytes(520))})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/write")
	commits, batches := db.CommitStats()
	b.ReportMetric(float64(batches)/float64(commits), "writes/commit")
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// snapshotOf returns a snapshot stream of db's file.
func snapshotOf(t *testing.T, db *bolt.DB) *bytes.Buffer {
	t.Helper()
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}
