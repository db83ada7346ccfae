package store

import (
	"encoding/binary"
	"fmt"
)

// The binary form of a batch, shared by the Raft log (store/raftstore) and the single-node
// write-ahead log (store/bolt), both of which outlive binaries:
//
//	uvarint op count | op*
//	op = kind (1 byte, OpKind) | uvarint len(key) | key | uvarint len(value) | value
//
// Framing, versions and checksums belong to the log that carries it.

// maxOps bounds the op count DecodeOps accepts, so a corrupt count cannot allocate unboundedly.
const maxOps = 1 << 20

// EncodedLen is the exact number of bytes AppendOps adds for ops.
func EncodedLen(ops []Op) int {
	n := uvarintLen(uint64(len(ops)))
	for _, op := range ops {
		n += 1 + uvarintLen(uint64(len(op.Key))) + len(op.Key) + uvarintLen(uint64(len(op.Value))) + len(op.Value)
	}
	return n
}

// AppendOps appends the binary form of ops to dst.
func AppendOps(dst []byte, ops []Op) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, op := range ops {
		dst = append(dst, byte(op.Kind))
		dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
		dst = append(dst, op.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(op.Value)))
		dst = append(dst, op.Value...)
	}
	return dst
}

// DecodeOps parses what AppendOps wrote, refusing ops that Validate refuses. Values are
// sub-slices of b (capacity clipped), so b must not change while they are in use; empty values
// decode as nil.
func DecodeOps(b []byte) ([]Op, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > maxOps {
		return nil, fmt.Errorf("decoding ops: bad op count")
	}
	b = b[n:]
	ops := make([]Op, 0, min(count, 1024))
	for i := uint64(0); i < count; i++ {
		if len(b) < 1 {
			return nil, fmt.Errorf("decoding ops: op %d truncated", i)
		}
		kind := OpKind(b[0])
		b = b[1:]
		key, rest, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("decoding ops: op %d key: %w", i, err)
		}
		val, rest, err := field(rest)
		if err != nil {
			return nil, fmt.Errorf("decoding ops: op %d value: %w", i, err)
		}
		b = rest
		op := Op{Kind: kind, Key: string(key)}
		if len(val) > 0 {
			op.Value = val
		}
		// Every encoded op passed Validate; anything else is damage or a newer format, and must
		// not be skipped silently by whoever applies the batch.
		if err := op.Validate(); err != nil {
			return nil, fmt.Errorf("decoding ops: op %d: %w", i, err)
		}
		ops = append(ops, op)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("decoding ops: %d trailing bytes", len(b))
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

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
