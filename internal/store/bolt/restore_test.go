package bolt_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// A restore erases what it destroys. The snapshot comes from a store where a record was deleted
// but not yet compacted, so the snapshot (a page-for-page copy) carries it in free pages; the
// store restored into held a record the snapshot lacks. After the restore no file in the
// restored store's folder holds either: not the file (Restore, as the Raft state machine
// restores) and not the log's segments (RestoreLive, as a single node restores).
func TestDB_Restore_ErasesFreedAndReplacedRecords(t *testing.T) {
	ctx := context.Background()
	freed := bytes.Repeat([]byte("FREED-IN-SNAPSHOT-"), 1024) // overflow pages
	replaced := bytes.Repeat([]byte("REPLACED-BY-RESTORE-"), 1024)
	src := openTemp(t).(*bolt.DB)
	if err := src.Apply(ctx, []store.Op{store.Put("k/freed", freed), store.Put("k/kept", []byte("live"))}); err != nil {
		t.Fatal(err)
	}
	if err := src.Apply(ctx, []store.Op{store.Delete("k/freed")}); err != nil {
		t.Fatal(err)
	}
	snap := snapshotOf(t, src).Bytes()
	if !bytes.Contains(snap, freed[:64]) {
		t.Fatal("the snapshot does not carry the freed record: the test would prove nothing")
	}
	cases := []struct {
		name    string
		open    func(t *testing.T, path string) *bolt.DB
		restore func(db *bolt.DB, r io.Reader) error
	}{
		{"Restore", func(t *testing.T, path string) *bolt.DB {
			db, err := bolt.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}, func(db *bolt.DB, r io.Reader) error { return db.Restore(r) }},
		{"RestoreLive", openWAL, func(db *bolt.DB, r io.Reader) error { return db.RestoreLive(ctx, r) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := tc.open(t, filepath.Join(dir, "data.db"))
			defer db.Close()
			if err := db.Apply(ctx, []store.Op{store.Put("k/replaced", replaced)}); err != nil {
				t.Fatal(err)
			}
			if err := tc.restore(db, bytes.NewReader(snap)); err != nil {
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
				for _, gone := range [][]byte{freed[:64], replaced[:64]} {
					if bytes.Contains(raw, gone) {
						t.Errorf("%s still holds %.20q after the restore", filepath.Base(p), gone)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := db.Get(ctx, "k/kept"); err != nil || string(v) != "live" {
				t.Fatalf("restored record: %q %v", v, err)
			}
			if err := db.Apply(ctx, []store.Op{store.Put("k/after", []byte("1"))}); err != nil {
				t.Fatalf("write after the restore: %v", err)
			}
		})
	}
}
