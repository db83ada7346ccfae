package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strongroom/strongroom/internal/seal"
)

func TestShamir_SplitCombine(t *testing.T) {
	root, shares, err := seal.SplitRootKey(5, 3)
	if err != nil || len(shares) != 5 {
		t.Fatalf("split: %d shares, %v", len(shares), err)
	}
	orders := [][]int{{0, 1, 2}, {4, 2, 0}, {3, 1, 4}, {2, 4, 3}}
	for _, o := range orders {
		u := seal.NewUnsealer(3)
		var got []byte
		for i, idx := range o {
			got, err = u.Add(shares[idx])
			if err != nil {
				t.Fatalf("order %v: %v", o, err)
			}
			if i < 2 && got != nil {
				t.Fatalf("order %v: a key after %d shares", o, i+1)
			}
		}
		if !bytes.Equal(got, root) {
			t.Fatalf("order %v: combined key differs", o)
		}
		if n, _ := u.Progress(); n != 0 {
			t.Fatalf("shares kept after combining: %d", n)
		}
	}
}

func TestShamir_Rejects(t *testing.T) {
	_, shares, _ := seal.SplitRootKey(5, 3)
	cases := []struct {
		name  string
		input []string
	}{
		{"not base64", []string{"***"}},
		{"wrong length", []string{"AAAA"}},
		{"repeated", []string{shares[0], shares[0]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := seal.NewUnsealer(3)
			var err error
			for _, s := range c.input {
				_, err = u.Add(s)
			}
			if !errors.Is(err, seal.ErrBadShare) {
				t.Fatalf("err = %v, want ErrBadShare", err)
			}
		})
	}
	for _, bad := range [][2]int{{1, 1}, {3, 4}, {256, 3}} {
		if _, _, err := seal.SplitRootKey(bad[0], bad[1]); err == nil {
			t.Errorf("SplitRootKey(%d, %d) accepted", bad[0], bad[1])
		}
	}
}
