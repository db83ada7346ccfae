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
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutGetDelete", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, store.Put("a", []byte("1")))
		if got := mustGet(t, s, "a"); got != "1" {
			t.Fatalf("Get(a) = %q, want 1", got)
		}
		mustApply(t, s, store.Delete("a"))
		if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after delete err = %v", err)
		}
	})
	t.Run("BatchIsAtomic", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, store.Put("x", []byte("old")))
		err := s.Apply(ctx, []store.Op{store.Put("y", []byte("new")), store.RequireAbsent("x")})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Apply with failing precondition err = %v, want ErrConflict", err)
		}
		if _, err := s.Get(ctx, "y"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("write of a failed batch is visible: err = %v", err)
		}
	})
	t.Run("RequireEqual", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, store.Put("k", []byte("v1")))
		if err := s.Apply(ctx, []store.Op{store.RequireEqual("k", []byte("v2")), store.Put("k", []byte("v3"))}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale RequireEqual err = %v, want ErrConflict", err)
		}
		mustApply(t, s, store.RequireEqual("k", []byte("v1")), store.Put("k", []byte("v3")))
		if got := mustGet(t, s, "k"); got != "v3" {
			t.Fatalf("Get(k) = %q, want v3", got)
		}
	})
	t.Run("ScanOrderPrefixAfter", func(t *testing.T) {
		s := open(t)
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
	})
	t.Run("DeletePrefix", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, store.Put("d/1", []byte("a")), store.Put("d/2", []byte("b")), store.Put("e/1", []byte("c")))
		mustApply(t, s, store.DeletePrefix("d/"))
		n := 0
		_ = s.Scan(ctx, "", "", func(string, []byte) bool { n++; return true })
		if n != 1 {
			t.Fatalf("%d keys left after DeletePrefix, want 1", n)
		}
	})
	t.Run("ReturnedBytesAreCopies", func(t *testing.T) {
		s := open(t)
		mustApply(t, s, store.Put("c", []byte("abc")))
		v, _ := s.Get(ctx, "c")
		v[0] = 'X'
		if got := mustGet(t, s, "c"); got != "abc" {
			t.Fatalf("mutating a returned slice changed the store: %q", got)
		}
	})
	t.Run("ConcurrentConditionalWritesSerialize", func(t *testing.T) {
		s := open(t)
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
	})
	t.Run("InvalidOp", func(t *testing.T) {
		s := open(t)
		if err := s.Apply(ctx, []store.Op{{Kind: 99, Key: "k"}}); err == nil {
			t.Fatal("Apply accepted an unknown op kind")
		}
		if err := s.Apply(ctx, []store.Op{store.Put("", nil)}); err == nil {
			t.Fatal("Apply accepted an empty key")
		}
	})
	t.Run("ClosedStore", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, []store.Op{store.Put("a", nil)}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Apply after Close err = %v, want ErrClosed", err)
		}
		if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Get after Close err = %v, want ErrClosed", err)
		}
	})
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
