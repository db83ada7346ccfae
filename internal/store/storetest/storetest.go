// Package storetest is the conformance suite every store.Store implementation must pass. It is
// imported only by tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
)

// Exercise runs the whole suite against a fresh, empty store from open.
func Exercise(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// checks are the suite's sub-tests, in order; each gets a fresh, empty store.
var checks = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"GetMissing", checkGetMissing},
	{"PutGetDelete", checkPutGetDelete},
	{"BatchIsAtomic", checkBatchIsAtomic},
	{"RequireEqual", checkRequireEqual},
	{"ScanOrderPrefixAfter", checkScanOrderPrefixAfter},
	{"DeletePrefix", checkDeletePrefix},
	{"ReturnedBytesAreCopies", checkReturnedBytesAreCopies},
	{"ConcurrentConditionalWritesSerialize", checkConcurrentConditionalWritesSerialize},
	{"InvalidOp", checkInvalidOp},
	{"ClosedStore", checkClosedStore},
}

// checkGetMissing: a missing key is ErrNotFound.
func checkGetMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
	}
}

// checkPutGetDelete: a put is read back and a delete removes it.
func checkPutGetDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("a", []byte("1")))
	if got := mustGet(t, s, "a"); got != "1" {
		t.Fatalf("Get(a) = %q, want 1", got)
	}
	mustApply(t, s, store.Delete("a"))
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after delete err = %v", err)
	}
}

// checkBatchIsAtomic: a batch whose precondition fails writes nothing.
func checkBatchIsAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("x", []byte("old")))
	err := s.Apply(ctx, []store.Op{store.Put("y", []byte("new")), store.RequireAbsent("x")})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Apply with failing precondition err = %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("write of a failed batch is visible: err = %v", err)
	}
}

// checkRequireEqual: a stale RequireEqual fails the batch and a current one lets it through.
func checkRequireEqual(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("k", []byte("v1")))
	if err := s.Apply(ctx, []store.Op{store.RequireEqual("k", []byte("v2")), store.Put("k", []byte("v3"))}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale RequireEqual err = %v, want ErrConflict", err)
	}
	mustApply(t, s, store.RequireEqual("k", []byte("v1")), store.Put("k", []byte("v3")))
	if got := mustGet(t, s, "k"); got != "v3" {
		t.Fatalf("Get(k) = %q, want v3", got)
	}
}

// checkScanOrderPrefixAfter: scans keep to the prefix, start after after, go in key order and stop when told.
func checkScanOrderPrefixAfter(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("p/b", []byte("2")), store.Put("p/a", []byte("1")), store.Put("p/c", []byte("3")), store.Put("q/a", []byte("x")), store.Put("o", []byte("y")))
	cases := []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"p/", "", 0, "p/a p/b p/c "},
		{"p/", "p/a", 0, "p/b p/c "},
		{"p/", "p/bb", 0, "p/c "},
		{"p/", "", 2, "p/a p/b "},
		{"p/", "a", 0, "p/a p/b p/c "},
		{"z", "", 0, ""},
	}
	for _, c := range cases {
		got := ""
		n := 0
		err := s.Scan(ctx, c.prefix, c.after, func(k string, _ []byte) bool {
			got += k + " "
			n++
			return c.limit == 0 || n < c.limit
		})
		if err != nil || got != c.want {
			t.Errorf("Scan(%q, %q, limit %d) = %q, %v; want %q", c.prefix, c.after, c.limit, got, err, c.want)
		}
	}
}

// checkDeletePrefix: DeletePrefix removes the keys under the prefix and only those.
func checkDeletePrefix(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("d/1", []byte("a")), store.Put("d/2", []byte("b")), store.Put("e/1", []byte("c")))
	mustApply(t, s, store.DeletePrefix("d/"))
	n := 0
	_ = s.Scan(ctx, "", "", func(string, []byte) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d keys left after DeletePrefix, want 1", n)
	}
}

// checkReturnedBytesAreCopies: mutating a returned value does not change the store.
func checkReturnedBytesAreCopies(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustApply(t, s, store.Put("c", []byte("abc")))
	v, _ := s.Get(ctx, "c")
	v[0] = 'X'
	if got := mustGet(t, s, "c"); got != "abc" {
		t.Fatalf("mutating a returned slice changed the store: %q", got)
	}
}

// checkConcurrentConditionalWritesSerialize: of writers racing to create one key, exactly one wins.
func checkConcurrentConditionalWritesSerialize(t *testing.T, s store.Store) {
	ctx := context.Background()
	// 32 writers race to create the same key; exactly one may win.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Apply(ctx, []store.Op{store.RequireAbsent("race"), store.Put("race", []byte(fmt.Sprint(i)))})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("Apply: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d writers won, want exactly 1", wins)
	}
}

// checkInvalidOp: unknown op kinds and empty keys are refused.
func checkInvalidOp(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Apply(ctx, []store.Op{{Kind: 99, Key: "k"}}); err == nil {
		t.Fatal("Apply accepted an unknown op kind")
	}
	if err := s.Apply(ctx, []store.Op{store.Put("", nil)}); err == nil {
		t.Fatal("Apply accepted an empty key")
	}
}

// checkClosedStore: a closed store refuses reads and writes with ErrClosed.
func checkClosedStore(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, []store.Op{store.Put("a", nil)}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Apply after Close err = %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close err = %v, want ErrClosed", err)
	}
}

func mustApply(t *testing.T, s store.Store, ops ...store.Op) {
	t.Helper()
	if err := s.Apply(context.Background(), ops); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func mustGet(t *testing.T, s store.Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}
