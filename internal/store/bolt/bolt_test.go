package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

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
