package snapshotfile

import (
	"crypto/cipher"
	"encoding/binary"
	"io"
)

// chunkWriter encrypts a snapshot body chunk by chunk.
type chunkWriter struct {
	w   io.Writer
	a   cipher.AEAD
	buf []byte
	seq uint64
}

// nonce is the chunk's sequence number, with the final flag on the last chunk.
func nonce(seq uint64, final bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n, seq)
	if final {
		n[11] = finalBit
	}
	return n
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), chunkMax-len(cw.buf))
		cw.buf = append(cw.buf, p[:take]...)
		p = p[take:]
		if len(cw.buf) == chunkMax {
			if err := cw.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (cw *chunkWriter) flush(final bool) error {
	ct := cw.a.Seal(nil, nonce(cw.seq, final), cw.buf, []byte(magic))
	cw.seq++
	cw.buf = cw.buf[:0]
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(ct)))
	if _, err := cw.w.Write(l[:]); err != nil {
		return err
	}
	_, err := cw.w.Write(ct)
	return err
}

// Close writes the final chunk.
func (cw *chunkWriter) Close() error { return cw.flush(true) }
