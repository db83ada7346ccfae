package keyring_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
)

// FuzzKeyringOpen feeds arbitrary bytes to the two decoders of stored keyring data:
//
//   - as the keyring record (Load and Open must return an error, never panic, for anything that
//     is not a well-formed ring), both raw and sealed under the root key as the ring's JSON
//     (mode bit 1), so the JSON and key checks past the authentication are reached too; a ring
//     that loads must then seal and open a record;
//   - as a sealed record given to Open, Term and Rewrap under the vectors' keyring: never a
//     panic, and never a plaintext (nothing the fuzzer makes authenticates).
func FuzzKeyringOpen(f *testing.F) {
	v := buildVectors()
	f.Add(byte(0), mustHexF(f, v.Ring.Record))
	f.Add(byte(1), []byte(v.Ring.JSON))
	f.Add(byte(1), []byte(`{"v":1,"active":1,"terms":{"1":"AAAA"}}`))
	f.Add(byte(1), []byte(`{"v":1,"active":9,"terms":{},"backupKeys":null,"gen":18446744073709551615}`))
	f.Add(byte(1), []byte(`{"v":1,"active":1,"terms":{"1":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},"backupKeys":{"1":""}}`))
	f.Add(byte(0), []byte{})
	f.Add(byte(0), []byte{1})
	for _, r := range v.Records {
		f.Add(byte(2), mustHexF(f, r.Record))
	}
	ctx := context.Background()
	vecRing := mustHexF(f, v.Ring.Record)
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		if mode&2 != 0 {
			openRecord(t, vecRing, data)
			return
		}
		stored := data
		if mode&1 != 0 {
			stored = refSealRing(vecRoot, make([]byte, 12), data)
		}
		for name, load := range map[string]func() (*keyring.Keyring, error){
			"Load": func() (*keyring.Keyring, error) {
				return keyring.Load(ctx, newMemStore(map[string][]byte{keyring.RingKey: stored}), vecRoot)
			},
			"Open": func() (*keyring.Keyring, error) {
				return keyring.Open(ctx, newMemStore(map[string][]byte{keyring.RingKey: stored}), vecRoot)
			},
		} {
			kr, err := load()
			if err != nil {
				continue
			}
			if mode&1 == 0 && !bytes.Equal(stored, vecRing) {
				t.Fatalf("%s accepted bytes not sealed under the root key: %x", name, stored)
			}
			rec, err := kr.Seal(ctx, "system", "k", []byte("x"))
			if err != nil {
				t.Fatalf("%s: a keyring that loads cannot seal: %v", name, err)
			}
			if pt, err := kr.Open(ctx, "system", "k", rec); err != nil || string(pt) != "x" {
				t.Fatalf("%s: a keyring that loads cannot open its own record: %q, %v", name, pt, err)
			}
		}
	})
}

func openRecord(t *testing.T, ring, rec []byte) {
	ctx := context.Background()
	kr, err := keyring.Load(ctx, newMemStore(map[string][]byte{keyring.RingKey: ring}), vecRoot)
	if err != nil {
		t.Fatal(err)
	}
	keyring.Term(rec)
	pt, err := kr.Open(ctx, "vault/0123456789abcdef", "v/0123456789abcdef/n/FUZZ!~", rec)
	if err == nil {
		t.Fatalf("an arbitrary record opened: %q", pt)
	}
	if !errors.Is(err, keyring.ErrDecrypt) && !errors.Is(err, keyring.ErrUnknownTerm) {
		t.Fatalf("Open error %v is neither ErrDecrypt nor ErrUnknownTerm", err)
	}
	if _, _, err := kr.Rewrap("vault/0123456789abcdef", "v/0123456789abcdef/n/FUZZ!~", rec); err == nil {
		if term, _ := keyring.Term(rec); term != kr.Status().ActiveTerm {
			t.Fatal("Rewrap accepted an arbitrary record")
		}
	}
}

func mustHexF(f *testing.F, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
