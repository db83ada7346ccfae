package raftstore

import (
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
)

// Known-answer vector for Raft command entries (codec.go): one op of every kind, spelled out
// byte by byte, with its CRC-32C. Raft logs outlive binaries, so a change of these bytes (or of
// an OpKind number) must be a deliberate new entry version, not an accident.
func TestCodec_KnownAnswer(t *testing.T) {
	ops := []store.Op{
		store.Put("v/abc/n/X!~", []byte{3, 10, 11}),
		store.Delete("a"),
		store.DeletePrefix("v/abc/"),
		store.RequireAbsent("k"),
		store.RequireEqual("k2", []byte("old")),
	}
	body := "02" + "05" + // entry version 2, uvarint op count
		"01" + "0b" + hex.EncodeToString([]byte("v/abc/n/X!~")) + "03" + "030a0b" + // put: kind, key, value
		"02" + "01" + "61" + "00" + // delete "a", empty value
		"05" + "06" + hex.EncodeToString([]byte("v/abc/")) + "00" + // delete prefix
		"03" + "01" + "6b" + "00" + // require absent "k"
		"04" + "02" + "6b32" + "03" + hex.EncodeToString([]byte("old")) // require equal "k2" = "old"
	const crc = "5e544f5a" // CRC-32C (Castagnoli) of everything before it, big endian
	if got := hex.EncodeToString(encodeOps(ops)); got != body+crc {
		t.Fatalf("entry encoding changed:\n got %s\nwant %s", got, body+crc)
	}
	raw, _ := hex.DecodeString(body + crc)
	got, err := decodeOps(raw)
	if err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("decoding the vector = %+v, %v; want %+v", got, err, ops)
	}
	// Version 1 entries (no checksum) written by earlier builds decode to the same ops.
	v1, _ := hex.DecodeString("01" + body[2:])
	if got, err := decodeOps(v1); err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("decoding the version-1 vector = %+v, %v", got, err)
	}
}
