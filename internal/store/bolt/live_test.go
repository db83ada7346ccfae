package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// RestoreLive swaps the file while writers keep applying batches through the group-commit loop:
// every batch either lands before the swap (and is gone) or after it (and is there), nothing
// fails, and a damaged stream leaves the store as it was.
func TestDB_RestoreLive_UnderWrites(t *testing.T) {
	ctx := context.Background()
	src := openTemp(t).(*bolt.DB)
	if err := src.Apply(ctx, []store.Op{store.Put("restored", []byte("yes"))}); err != nil {
		t.Fatal(err)
	}
	file := snapshotOf(t, src)

	db := openTemp(t).(*bolt.DB)
	if err := db.Apply(ctx, []store.Op{store.Put("old", []byte("x"))}); err != nil {
		t.Fatal(err)
	}
	if err := db.RestoreLive(ctx, bytes.NewReader(file.Bytes()[:file.Len()/2])); err == nil {
		t.Fatal("a truncated file was restored")
	}
	if v, err := db.Get(ctx, "old"); err != nil || string(v) != "x" {
		t.Fatalf("refused restore changed the store: %q %v", v, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := db.Apply(ctx, []store.Op{store.Put(fmt.Sprintf("w%d-%03d", w, i), []byte("v"))}); err != nil {
					errs <- err
				}
			}
		}()
	}
	if err := db.RestoreLive(ctx, bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write during restore: %v", err)
	}
	if v, err := db.Get(ctx, "restored"); err != nil || string(v) != "yes" {
		t.Fatalf("restored key: %q %v", v, err)
	}
	if _, err := db.Get(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pre-restore key survived: %v", err)
	}
	// The store takes writes after the swap.
	if err := db.Apply(ctx, []store.Op{store.Put("after", []byte("1"))}); err != nil {
		t.Fatal(err)
	}
}

// CompactIndexed drops a deleted record's bytes from a state-machine file and keeps its applied
// index and live records.
func TestDB_CompactIndexed_ErasesDeletedAndKeepsIndex(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t).(*bolt.DB)
	canary := bytes.Repeat([]byte("PURGED-CANARY-"), 64)
	if _, err := db.ApplyIndexed(5, [][]store.Op{{store.Put("gone", canary), store.Put("kept", []byte("live"))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyIndexed(6, [][]store.Op{{store.Delete("gone")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CompactIndexed(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PURGED-CANARY-")) {
		t.Fatal("deleted record still in the file after compaction")
	}
	if idx, _ := db.AppliedIndex(); idx != 6 {
		t.Fatalf("applied index %d after compaction, want 6", idx)
	}
	if v, err := db.Get(ctx, "kept"); err != nil || string(v) != "live" {
		t.Fatalf("live record after compaction: %q %v", v, err)
	}
	if _, err := db.ApplyIndexed(7, [][]store.Op{{store.Put("after", []byte("1"))}}); err != nil {
		t.Fatal(err)
	}
}
