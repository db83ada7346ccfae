//go:build linux

package bolt_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// BenchmarkOpen opens a store of 100,000 secrets (a head of 520 bytes and a version of 450
// each, written in random order, then 20,000 of them rewritten or deleted, so the file has free
// pages as a live one does) up to its first Get, with the file in the page cache (warm) and
// dropped from it first (cold). Without a persisted free list both grow with the file's size.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "data.db")
	buildStore(b, path, 100000)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, cold := range []bool{false, true} {
		b.Run(fmt.Sprintf("cold=%v", cold), func(b *testing.B) {
			for range b.N {
				if cold {
					b.StopTimer()
					dropFromPageCache(b, path)
					b.StartTimer()
				}
				db, err := bolt.OpenWithWAL(path, bolt.WALOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := db.Get(context.Background(), secretHead(777)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
	}
}

func secretHead(i int) string { return fmt.Sprintf("%sSECRET-%07d!~", scanPrefix, i) }
func secretVersion(i int) string {
	return fmt.Sprintf("%sSECRET-%07d!%016x", scanPrefix, i, rand.Uint64())
}

// buildStore writes n secrets into a new store at path, 1,000 to a batch, in random order,
// then rewrites or deletes a fifth of the heads.
func buildStore(b *testing.B, path string, n int) {
	db, err := bolt.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	perm := rand.Perm(n)
	for s := 0; s < n; s += 1000 {
		var ops []store.Op
		for _, i := range perm[s:min(s+1000, n)] {
			ops = append(ops, store.Put(secretHead(i), randBytes(520)), store.Put(secretVersion(i), randBytes(450)))
		}
		if err := db.Apply(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	for s := 0; s < n/5; s += 1000 {
		var ops []store.Op
		for range 1000 {
			if i := rand.IntN(n); i != 777 && rand.IntN(4) == 0 {
				ops = append(ops, store.Delete(secretHead(i)))
			} else {
				ops = append(ops, store.Put(secretHead(i), randBytes(520)))
			}
		}
		if err := db.Apply(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
}

// dropFromPageCache writes the file's dirty pages back and drops all of its pages from the page
// cache, so the next open reads it from the disk.
func dropFromPageCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}
