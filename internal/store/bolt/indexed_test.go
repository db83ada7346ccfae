package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

func TestDB_ApplyIndexed_RecordsIndexAndPerBatchResults(t *testing.T) {
	db := openTemp(t).(*bolt.DB)
	res, err := db.ApplyIndexed(7, [][]store.Op{
		{store.Put("a", []byte("1"))},
		{store.RequireAbsent("a"), store.Put("b", []byte("2"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != nil || !errors.Is(res[1], store.ErrConflict) {
		t.Fatalf("results = %v, want [nil, ErrConflict]", res)
	}
	if idx, _ := db.AppliedIndex(); idx != 7 {
		t.Fatalf("AppliedIndex = %d, want 7", idx)
	}
	if _, err := db.Get(context.Background(), "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("write of a conflicting batch is visible: %v", err)
	}
}

func TestDB_SnapshotRestore(t *testing.T) {
	src := openTemp(t).(*bolt.DB)
	if _, err := src.ApplyIndexed(3, [][]store.Op{{store.Put("k", []byte("v"))}}); err != nil {
		t.Fatal(err)
	}
	buf := snapshotOf(t, src)
	dst := openTemp(t).(*bolt.DB)
	cases := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"Garbage", []byte("not a bbolt file at all, just text"), "restoring"},
		{"Truncated", buf.Bytes()[:buf.Len()/2], "restoring"},
		{"Valid", buf.Bytes(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := dst.Restore(bytes.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Restore = %v, want error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, err := dst.Get(context.Background(), "k"); err != nil || string(v) != "v" {
				t.Fatalf("after restore Get = %q, %v", v, err)
			}
			if idx, _ := dst.AppliedIndex(); idx != 3 {
				t.Fatalf("AppliedIndex after restore = %d, want 3", idx)
			}
		})
	}
}
