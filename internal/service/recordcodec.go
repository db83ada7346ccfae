package service

import (
	"encoding/binary"
	"errors"
)

// Stored secret records (heads and versions) use a compact binary encoding instead of JSON: it
// is the hottest decode on the read path. The plaintext inside the keyring's envelope is
//
//	byte 0   recordBinaryV2 (V1 records and JSON records, which start with '{', are still read)
//	byte 1   kind: 'h' secret head, 'v' secret version
//	then the fields in declaration order: strings as uvarint length + bytes, integers as
//	zig-zag varints, booleans as one byte, optional values as a presence byte then the value,
//	tags as a uvarint count then name, value pairs.
//
// Version 2 appends the rollback counters (integrity.go): to every version's fields (the
// head's copy of its latest version included) seq and born as uvarints, and to the head seq,
// origin (uvarints), the 16-byte tip, pinFloor (uvarint) and pins (a string of 16-byte binary
// version id + uvarint seq entries). Version 1 records decode with all of them zero.
const (
	recordBinaryV1 = 0x01
	recordBinaryV2 = 0x02
)

const (
	kindHead    = 'h'
	kindVersion = 'v'
)

// binaryRecord is a record type with the binary encoding.
type binaryRecord interface {
	appendRecord(dst []byte) []byte
}

// binaryDecoder is the decoding side, implemented on pointers.
type binaryDecoder interface {
	decodeRecord(b []byte) error
}

var errBadRecord = errors.New("malformed binary record")

func (sv SecretVersion) appendRecord(dst []byte) []byte {
	dst = append(dst, recordBinaryV2, kindVersion)
	return sv.appendFields(dst)
}

func (sv *SecretVersion) decodeRecord(b []byte) error {
	r := recordReader{b: b}
	r.header(kindVersion)
	sv.readFields(&r)
	return r.done()
}

func (sv *SecretVersion) appendFields(dst []byte) []byte {
	dst = appendString(dst, sv.Version)
	dst = appendString(dst, sv.Value)
	dst = appendString(dst, sv.ContentType)
	dst = binary.AppendUvarint(dst, uint64(len(sv.Tags)))
	for k, v := range sv.Tags {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	dst = appendBool(dst, sv.Enabled)
	dst = appendOptInt(dst, sv.NotBefore)
	dst = appendOptInt(dst, sv.Expires)
	dst = binary.AppendVarint(dst, sv.Created)
	dst = binary.AppendVarint(dst, sv.Updated)
	dst = binary.AppendUvarint(dst, sv.seq)
	return binary.AppendUvarint(dst, sv.born)
}

func (sv *SecretVersion) readFields(r *recordReader) {
	sv.Version = r.string()
	sv.Value = r.string()
	sv.ContentType = r.string()
	sv.Tags = nil
	if n := r.uvarint(); n > 0 && r.err == nil {
		if n > MaxTags*4 || n > uint64(len(r.b)) {
			r.err = errBadRecord
			return
		}
		sv.Tags = make(map[string]string, n)
		for range n {
			k := r.string()
			sv.Tags[k] = r.string()
		}
	}
	sv.Enabled = r.bool()
	sv.NotBefore = r.optInt()
	sv.Expires = r.optInt()
	sv.Created = r.varint()
	sv.Updated = r.varint()
	sv.seq, sv.born = 0, 0
	if r.version >= recordBinaryV2 {
		sv.seq = r.uvarint()
		sv.born = r.uvarint()
	}
}

func (h secretHead) appendRecord(dst []byte) []byte {
	dst = append(dst, recordBinaryV2, kindHead)
	dst = appendString(dst, h.Name)
	dst = appendString(dst, h.Latest)
	if h.Deleted == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, h.Deleted.DeletedDate)
		dst = binary.AppendVarint(dst, h.Deleted.ScheduledPurgeDate)
	}
	dst = h.Item.appendFields(dst)
	if h.LatestValue == nil {
		dst = append(dst, 0)
	} else {
		dst = appendString(append(dst, 1), *h.LatestValue)
	}
	dst = binary.AppendUvarint(dst, h.Seq)
	dst = binary.AppendUvarint(dst, h.Origin)
	dst = append(dst, h.Tip[:]...)
	dst = binary.AppendUvarint(dst, h.PinFloor)
	return appendString(dst, h.Pins)
}

func (h *secretHead) decodeRecord(b []byte) error {
	r := recordReader{b: b}
	r.header(kindHead)
	h.Name = r.string()
	h.Latest = r.string()
	h.Deleted = nil
	if r.bool() {
		h.Deleted = &Deletion{DeletedDate: r.varint(), ScheduledPurgeDate: r.varint()}
	}
	h.Item.readFields(&r)
	h.LatestValue = nil
	if r.bool() {
		v := r.string()
		h.LatestValue = &v
	}
	h.Seq, h.Origin, h.Tip, h.PinFloor, h.Pins = 0, 0, [tipLen]byte{}, 0, ""
	if r.version >= recordBinaryV2 {
		h.Seq = r.uvarint()
		h.Origin = r.uvarint()
		r.fixed(h.Tip[:])
		h.PinFloor = r.uvarint()
		h.Pins = r.string()
	}
	return r.done()
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendOptInt(dst []byte, p *int64) []byte {
	if p == nil {
		return append(dst, 0)
	}
	return binary.AppendVarint(append(dst, 1), *p)
}

// recordReader decodes the binary encoding; the first problem sticks in err.
type recordReader struct {
	b       []byte
	err     error
	version byte // the record's encoding version, from its header
}

func (r *recordReader) fail() { r.err, r.b = errBadRecord, nil }

func (r *recordReader) header(kind byte) {
	if len(r.b) < 2 || (r.b[0] != recordBinaryV1 && r.b[0] != recordBinaryV2) || r.b[1] != kind {
		r.fail()
		return
	}
	r.version, r.b = r.b[0], r.b[2:]
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	if n == 0 {
		return "" // no allocation for empty strings (most heads have no pins)
	}
	s := string(r.b[:n]) // a copy: the caller clears the plaintext afterwards
	r.b = r.b[n:]
	return s
}

// fixed fills dst with the next len(dst) bytes.
func (r *recordReader) fixed(dst []byte) {
	if len(r.b) < len(dst) {
		r.fail()
		return
	}
	r.b = r.b[copy(dst, r.b):]
}

func (r *recordReader) bool() bool {
	if len(r.b) == 0 {
		r.fail()
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail()
	}
	return v == 1
}

func (r *recordReader) optInt() *int64 {
	if !r.bool() {
		return nil
	}
	v := r.varint()
	return &v
}

func (r *recordReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadRecord
	}
	return r.err
}
