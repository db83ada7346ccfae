package raftstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
)

func TestCodec_RoundTripAndCorruption(t *testing.T) {
	ops := []store.Op{{Kind: store.OpPut, Key: "a/b", Value: []byte("ciphertext")}, {Kind: store.OpDelete, Key: "a/c"}}
	good := encodeOps(ops)
	got, err := decodeOps(good)
	if err != nil || len(got) != 2 || got[0].Key != "a/b" || !bytes.Equal(got[0].Value, []byte("ciphertext")) || got[1].Kind != store.OpDelete {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	// Version 1 (no checksum) entries written by earlier builds still decode.
	v1 := append([]byte{entryV1}, good[1:len(good)-4]...)
	if got, err := decodeOps(v1); err != nil || len(got) != 2 {
		t.Fatalf("version 1 entry: %+v, %v", got, err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x20; return b }
	cases := []struct {
		name    string
		entry   []byte
		corrupt bool // must fail with ErrCorruptEntry, not just any error
	}{
		{"value byte flipped", flip(len(good) - 8), true},
		{"key byte flipped", flip(4), true},
		{"checksum flipped", flip(len(good) - 1), true},
		{"truncated", good[:len(good)-2], true},
		{"empty", nil, false},
		{"unknown version", append([]byte{9}, good[1:]...), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeOps(c.entry)
			if err == nil || (c.corrupt && !errors.Is(err, ErrCorruptEntry)) {
				t.Fatalf("decode = %v, want a refusal (corrupt=%v)", err, c.corrupt)
			}
		})
	}
}
