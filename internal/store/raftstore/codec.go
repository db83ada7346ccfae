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

// maxOps bounds the op count a decoder accepts, so a corrupt count cannot allocate unboundedly.
const maxOps = 1 << 20

func encodeOps(ops []store.Op) []byte {
	n := 1 + binary.MaxVarintLen64 + 4
	for _, op := range ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		b = append(b, byte(op.Kind))
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		b = append(b, op.Key...)
		b = binary.AppendUvarint(b, uint64(len(op.Value)))
		b = append(b, op.Value...)
	}
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
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > maxOps {
		return nil, fmt.Errorf("decoding log entry: bad op count")
	}
	b = b[n:]
	ops := make([]store.Op, 0, min(count, 1024))
	for i := uint64(0); i < count; i++ {
		if len(b) < 1 {
			return nil, fmt.Errorf("decoding log entry: op %d truncated", i)
		}
		kind := store.OpKind(b[0])
		b = b[1:]
		key, rest, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("decoding log entry: op %d key: %w", i, err)
		}
		val, rest, err := field(rest)
		if err != nil {
			return nil, fmt.Errorf("decoding log entry: op %d value: %w", i, err)
		}
		b = rest
		op := store.Op{Kind: kind, Key: string(key)}
		if len(val) > 0 {
			op.Value = val
		}
		ops = append(ops, op)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("decoding log entry: %d trailing bytes", len(b))
	}
	return ops, nil
}

func field(b []byte) (val, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, nil, fmt.Errorf("bad length")
	}
	b = b[n:]
	if uint64(len(b)) < l {
		return nil, nil, fmt.Errorf("truncated")
	}
	return b[:l:l], b[l:], nil
}
