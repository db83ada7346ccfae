package bolt_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// freelistSynced reads the file's current meta page (of the two, the one with the higher
// transaction id) and reports whether it points at a persisted free list; bbolt's on-disk
// format marks "not persisted" with page id 2^64-1.
func freelistSynced(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const pageHeader = 16 // id, flags, count, overflow
	buf := make([]byte, pageHeader+64)
	var txid, freelist uint64
	for page := range 2 {
		pageSize := int64(4096)
		if _, err := f.ReadAt(buf, int64(page)*pageSize); err != nil {
			t.Fatal(err)
		}
		meta := buf[pageHeader:]
		if ps := binary.LittleEndian.Uint32(meta[8:12]); int64(ps) != pageSize {
			t.Fatalf("meta page %d: page size %d; this check assumes 4096", page, ps)
		}
		if id := binary.LittleEndian.Uint64(meta[48:56]); page == 0 || id > txid {
			txid, freelist = id, binary.LittleEndian.Uint64(meta[32:40])
		}
	}
	return freelist != ^uint64(0)
}

// makeOldFile writes a store file the way builds before the persisted free list did
// (NoFreelistSync): n records k/0000.. = "v", then every third deleted, so it has free pages.
func makeOldFile(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("format"), []byte("1")); err != nil {
			return err
		}
		kv, err := tx.CreateBucket([]byte("kv"))
		if err != nil {
			return err
		}
		for i := range n {
			if err := kv.Put([]byte(fmt.Sprintf("k/%04d", i)), make([]byte, 200)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bbolt.Tx) error {
			for i := 0; i < n; i += 3 {
				if err := tx.Bucket([]byte("kv")).Delete([]byte(fmt.Sprintf("k/%04d", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// checkFile opens path with bbolt directly, as an older build would (NoFreelistSync set to
// noSync), runs bbolt's consistency check (every page reachable or free, none both) and
// counts the records under k/.
func checkFile(t *testing.T, path string, noSync bool) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, FreelistType: bbolt.FreelistMapType, NoFreelistSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return tx.Bucket([]byte("kv")).ForEach(func(k, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatalf("checking %s: %v", path, err)
	}
	return n
}

// A file written without a persisted free list (every store before this build) opens, in
// either mode; the first open writes the free list; reads and writes go on; the file stays
// consistent and opens again, in this build and in an older one.
func TestOpen_FileWithoutPersistedFreelist(t *testing.T) {
	modes := []struct {
		name string
		open func(string) (*bolt.DB, error)
	}{{"file", bolt.Open}, {"wal", func(p string) (*bolt.DB, error) { return bolt.OpenWithWAL(p, bolt.WALOptions{}) }}}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "data.db")
			makeOldFile(t, path, 3000)
			if freelistSynced(t, path) {
				t.Fatal("the old-style file already has a persisted free list")
			}
			db, err := m.open(path)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := db.Get(ctx, "k/0001"); err != nil || len(v) != 200 {
				t.Fatalf("Get(k/0001) = %d bytes, %v", len(v), err)
			}
			for i := range 50 {
				ops := []store.Op{store.Put(fmt.Sprintf("k/%04d", 3000+i), []byte("new")), store.Delete(fmt.Sprintf("k/%04d", 3*i+1))}
				if err := db.Apply(ctx, ops); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if !freelistSynced(t, path) {
				t.Fatal("after an open by this build the file has no persisted free list")
			}
			want := 2000 + 50 - 50 // 3000 less every third, plus 50 new, less 50 deleted
			if n := checkFile(t, path, false); n != want {
				t.Fatalf("after reopening: %d records; want %d", n, want)
			}
			if n := checkFile(t, path, true); n != want {
				t.Fatalf("opened as an older build would: %d records; want %d", n, want)
			}
		})
	}
}
