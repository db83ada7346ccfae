package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/strongroom/strongroom/internal/store"
)

// Command entries start with a version byte.
//
// Version 2 (written):
//
//	0x02 | uvarint op count | op* | CRC-32C (big endian) of everything before it
//	op = kind (1 byte, store.OpKind) | uvarint len(key) | key | uvarint len(value) | value
//
// Version 1 (read only) is the same without the checksum. The checksum lets a node notice an
// entry whose bytes changed on its disk (the log file has no checksums of its own) and stop
// rather than apply something the leader never committed.
//
// The log outlives binaries: a node refuses an entry of another version rather than guess, and
// kinds keep their numbers forever (store.OpKind says so).
const (
	entryV1      = 1
	entryVersion = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeOps(ops []store.Op) []byte {
	b := make([]byte, 0, 1+store.EncodedLen(ops)+4)
	b = append(b, entryVersion)
	b = store.AppendOps(b, ops)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// ErrCorruptEntry means a log entry's checksum does not match its bytes.
var ErrCorruptEntry = errors.New("checksum mismatch: the entry is corrupt")

func decodeOps(b []byte) ([]store.Op, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decoding log entry: empty")
	}
	switch b[0] {
	case entryV1:
	case entryVersion:
		if len(b) < 5 {
			return nil, fmt.Errorf("decoding log entry: truncated")
		}
		body := b[:len(b)-4]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
			return nil, fmt.Errorf("decoding log entry: %w", ErrCorruptEntry)
		}
		b = body
	default:
		return nil, fmt.Errorf("decoding log entry: unknown version %d (this build reads %d and %d)", b[0], entryV1, entryVersion)
	}
	ops, err := store.DecodeOps(b[1:])
	if err != nil {
		return nil, fmt.Errorf("decoding log entry: %w", err)
	}
	return ops, nil
}
