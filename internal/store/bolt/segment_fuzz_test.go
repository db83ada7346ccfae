package bolt

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzReadSegment: any segment file content (torn, recycled, random) is read without a panic,
// and only records with this segment's sequence number and a valid checksum come back, in order
// from the start.
func FuzzReadSegment(f *testing.F) {
	rec := func(seq uint64, payload string) []byte {
		b := make([]byte, walHeaderLen, walHeaderLen+len(payload))
		b = append(b, payload...)
		binary.BigEndian.PutUint64(b[0:8], seq)
		binary.BigEndian.PutUint32(b[8:12], uint32(len(payload)))
		binary.BigEndian.PutUint32(b[12:16], crc32.Update(crc32.Checksum(b[:12], castagnoli), castagnoli, b[walHeaderLen:]))
		return b
	}
	f.Add(append(rec(7, "one"), rec(7, "two")...))
	f.Add(append(rec(7, "one"), rec(5, "old life")...))
	f.Add(append(rec(7, "one"), make([]byte, 64)...))
	f.Add(rec(7, "torn")[:18])
	f.Fuzz(func(t *testing.T, data []byte) {
		payloads := parseSegment(data, 7)
		off := 0
		for _, p := range payloads { // each must be the next well-formed record of the file
			if string(data[off:off+walHeaderLen+len(p)]) != string(rec(7, string(p))) {
				t.Fatalf("payload %q at %d is not a valid record of segment 7", p, off)
			}
			off += walHeaderLen + len(p)
		}
	})
}
