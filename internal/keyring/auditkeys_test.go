package keyring_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
)

// The audit keys must be the same on every node and after every restart (a verifier pins the
// public key), survive a term rotation and a rekey, and differ from each other.
func TestAuditKeys_DeterministicAndDistinct(t *testing.T) {
	ctx := context.Background()
	kr, st := newKeyring(t)
	sign1, err := kr.AuditSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	dig1, err := kr.TokenDigestKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(dig1) != 32 || bytes.Equal(dig1, sign1.Seed()) {
		t.Fatalf("token digest key is %d bytes or equals the signing seed", len(dig1))
	}
	pub1 := sign1.Public().(ed25519.PublicKey)

	// Another process over the same store (a restart, another node sharing the ring).
	again, err := keyring.Load(ctx, st, rootA)
	if err != nil {
		t.Fatal(err)
	}
	same := func(step string, kr *keyring.Keyring, wantSame bool) {
		t.Helper()
		sk, err := kr.AuditSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		dk, _ := kr.TokenDigestKey()
		if got := sk.Public().(ed25519.PublicKey).Equal(pub1) && bytes.Equal(dk, dig1); got != wantSame {
			t.Fatalf("%s: keys unchanged = %v, want %v", step, got, wantSame)
		}
	}
	same("reload", again, true)
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	same("after rotation", kr, true)
	rootB := bytes.Repeat([]byte{9}, keyring.KeySize)
	if err := kr.Rekey(ctx, rootB); err != nil {
		t.Fatal(err)
	}
	same("after rekey", kr, true)
	if _, err := kr.RetireTerms(ctx); err != nil {
		t.Fatal(err)
	}
	same("after retiring the oldest term", kr, false)

	// A different deployment derives different keys.
	other, _ := newKeyring(t)
	same("other keyring", other, false)
}
