package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// A member whose keyring was re-sealed by another node under a new root key opens it with the
// staged key, and only with the right one.
func TestKeyring_Reload_AdoptsStagedRoot(t *testing.T) {
	oldRoot, newRoot := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	cases := []struct {
		name    string
		staged  []byte
		wantErr error
	}{
		{"nothing staged", nil, keyring.ErrWrongRootKey},
		{"another key staged", bytes.Repeat([]byte{5}, 32), keyring.ErrWrongRootKey},
		{"the new key staged", newRoot, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			leader, err := keyring.Open(ctx, st, bytes.Clone(oldRoot))
			if err != nil {
				t.Fatal(err)
			}
			member, err := keyring.Load(ctx, st, bytes.Clone(oldRoot))
			if err != nil {
				t.Fatal(err)
			}
			adopted := 0
			member.SetStagedRoot(func() ([]byte, func()) {
				if tc.staged == nil {
					return nil, nil
				}
				return bytes.Clone(tc.staged), func() { adopted++ }
			})
			if err := leader.Rekey(ctx, bytes.Clone(newRoot)); err != nil {
				t.Fatal(err)
			}
			if _, err := leader.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			err = member.Reload(ctx)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (adopted == 1) {
				t.Fatalf("Reload = %v after %d adoptions, want %v", err, adopted, tc.wantErr)
			}
			if err != nil {
				return
			}
			// The member now seals under the new root: a later change by it reloads everywhere.
			if _, err := member.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := leader.Reload(ctx); err != nil {
				t.Fatalf("leader reload after the member's rotate: %v", err)
			}
			if member.Status().ActiveTerm != 3 {
				t.Fatalf("active term %d", member.Status().ActiveTerm)
			}
		})
	}
}
