package snapshotfile

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
)

// fakeSealer seals under a fixed key, as the keyring's root wrap does.
type fakeSealer struct{ key byte }

func (f fakeSealer) SealRoot(purpose string, pt []byte) ([]byte, error) {
	a, _ := newGCM(bytes.Repeat([]byte{f.key}, 32))
	n := make([]byte, 12)
	return append(n, a.Seal(nil, n, pt, []byte(purpose))...), nil
}

func (f fakeSealer) OpenRoot(purpose string, blob []byte) ([]byte, error) {
	a, _ := newGCM(bytes.Repeat([]byte{f.key}, 32))
	if len(blob) < 12 {
		return nil, errors.New("short")
	}
	return a.Open(nil, blob[:12], blob[12:], []byte(purpose))
}

// sealTestSnapshot builds a snapshot file of body the way Write does.
func sealTestSnapshot(t *testing.T, rs RootSealer, body []byte) []byte {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	a, _ := newGCM(key)
	var out bytes.Buffer
	sw := &chunkWriter{w: &out, a: a}
	if _, err := sw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	hdr, _ := rs.SealRoot(purpose, []byte(`{"key":"`+b64(key)+`","index":7}`))
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(hdr)))
	return append(append(append([]byte(magic), l[:]...), hdr...), out.Bytes()...)
}

// frames splits the chunk frames after the header.
func frames(file []byte) (head []byte, chunks [][]byte) {
	hl := int(binary.BigEndian.Uint32(file[len(magic):]))
	off := len(magic) + 4 + hl
	head = file[:off]
	for off < len(file) {
		n := int(binary.BigEndian.Uint32(file[off:]))
		chunks = append(chunks, file[off:off+4+n])
		off += 4 + n
	}
	return head, chunks
}

func TestSnapshotFile_MultiChunkTampering(t *testing.T) {
	rs := fakeSealer{1}
	body := make([]byte, 2*chunkMax+12345)
	rand.Read(body)
	file := sealTestSnapshot(t, rs, body)
	var got bytes.Buffer
	if h, err := open(rs, bytes.NewReader(file), &got); err != nil || h.Index != 7 || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("intact file: index %d, %v, same body %v", h.Index, err, bytes.Equal(got.Bytes(), body))
	}
	head, chunks := frames(file)
	if len(chunks) != 3 {
		t.Fatalf("%d chunks, want 3", len(chunks))
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		file []byte
		rs   RootSealer
	}{
		{"final chunk dropped", join(head, chunks[0], chunks[1]), rs},
		{"chunks swapped", join(head, chunks[1], chunks[0], chunks[2]), rs},
		{"middle chunk dropped", join(head, chunks[0], chunks[2]), rs},
		{"chunk repeated", join(head, chunks[0], chunks[0], chunks[1], chunks[2]), rs},
		{"data after the final chunk", join(head, chunks[0], chunks[1], chunks[2], chunks[2]), rs},
		{"other root key", file, fakeSealer{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := open(c.rs, bytes.NewReader(c.file), &bytes.Buffer{})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("open = %v, want ErrRefused", err)
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
