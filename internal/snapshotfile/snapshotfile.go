// Package snapshotfile is the encrypted snapshot file format that both a single node
// (`operator snapshot save|restore`, scheduled snapshots) and a cluster (`operator raft snapshot
// save|restore`) write: the whole bbolt store file as of one consistent point, encrypted and
// authenticated under a key only the root key opens.
//
//	magic "SRSNAP1\n"
//	uint32 BE header length | header = RootSealer.SealRoot("raft-snapshot", JSON header)
//	chunk* = uint32 BE length | AES-256-GCM(data key, nonce, chunk of at most 1 MiB, AAD magic)
//
// The data key is random per file and travels only in the root-sealed header, so a file opens
// on any deployment with the same root key (a fresh server or cluster made with the same seal)
// and nowhere else. Chunk nonces are the chunk's sequence number with a final flag: reordered,
// dropped, altered or appended chunks and a truncated file all fail before anything is restored.
// The package knows the format only: where the plaintext comes from and goes to is the caller's.
package snapshotfile

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

const (
	magic    = "SRSNAP1\n"
	purpose  = "raft-snapshot" // the root-seal purpose of the header (kept from the cluster format)
	chunkMax = 1 << 20
	maxHdr   = 4096
	finalBit = 1
)

// ErrRefused means a snapshot file is damaged, truncated, tampered with or sealed under another
// root key.
var ErrRefused = errors.New("snapshot refused: not intact or not sealed under this cluster's root key")

// RootSealer seals small payloads under the root key (keyring.Keyring implements it).
type RootSealer interface {
	SealRoot(purpose string, plaintext []byte) ([]byte, error)
	OpenRoot(purpose string, blob []byte) ([]byte, error)
}

// Info is what a snapshot file's authenticated header says about it.
type Info struct {
	// Index is the applied log index of the store the file holds (0 for a single node's store).
	Index   uint64    `json:"index"`
	NodeID  string    `json:"nodeId,omitempty"`
	Created time.Time `json:"created"`
}

// header is the sealed header: Info plus the file's data key.
type header struct {
	Key     []byte    `json:"key"`
	Index   uint64    `json:"index"`
	NodeID  string    `json:"nodeId"`
	Created time.Time `json:"created"`
}

// Write writes a snapshot file to w: backup writes the plaintext store file (a consistent bbolt
// copy) and returns the applied log index it holds (0 for a single node). The body goes through
// a temporary file in tmpDir first, because the header names the index.
func Write(rs RootSealer, tmpDir, nodeID string, w io.Writer, backup func(io.Writer) (uint64, error)) (uint64, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return 0, err
	}
	defer clear(key)
	a, err := newGCM(key)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(tmpDir, "snapshot-save-*")
	if err != nil {
		return 0, fmt.Errorf("creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	cw := &chunkWriter{w: bw, a: a}
	idx, err := backup(cw)
	if err != nil {
		return 0, err
	}
	if err := cw.Close(); err != nil {
		return 0, fmt.Errorf("writing snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing snapshot: %w", err)
	}
	hdr, _ := json.Marshal(header{Key: key, Index: idx, NodeID: nodeID, Created: time.Now().UTC()})
	sealed, err := rs.SealRoot(purpose, hdr)
	clear(hdr)
	if err != nil {
		return 0, err
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(sealed)))
	if _, err := io.WriteString(w, magic); err != nil {
		return 0, err
	}
	if _, err := w.Write(append(l[:], sealed...)); err != nil {
		return 0, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return 0, err
	}
	return idx, nil
}

// Open authenticates and decrypts a whole snapshot file into dst, a plaintext bbolt store file.
// Any defect fails with ErrRefused; the caller must not use dst unless it returns nil.
func Open(rs RootSealer, r io.Reader, dst io.Writer) (Info, error) {
	h, err := open(rs, r, dst)
	clear(h.Key)
	return Info{Index: h.Index, NodeID: h.NodeID, Created: h.Created}, err
}

func open(rs RootSealer, r io.Reader, dst io.Writer) (header, error) {
	var h header
	br := bufio.NewReaderSize(r, 1<<16)
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(br, m); err != nil || string(m) != magic {
		return h, fmt.Errorf("%w: not a Strongroom snapshot file", ErrRefused)
	}
	hdr, err := readFrame(br, maxHdr)
	if err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrRefused, err)
	}
	pt, err := rs.OpenRoot(purpose, hdr)
	if err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrRefused, err)
	}
	if err := json.Unmarshal(pt, &h); err != nil || len(h.Key) != 32 {
		return h, fmt.Errorf("%w: header is malformed", ErrRefused)
	}
	a, err := newGCM(h.Key)
	if err != nil {
		return h, err
	}
	for seq := uint64(0); ; seq++ {
		ct, err := readFrame(br, chunkMax+a.Overhead())
		if err != nil {
			return h, fmt.Errorf("%w: chunk %d: %v (truncated?)", ErrRefused, seq, err)
		}
		chunk, err := a.Open(nil, nonce(seq, false), ct, []byte(magic))
		final := false
		if err != nil {
			if chunk, err = a.Open(nil, nonce(seq, true), ct, []byte(magic)); err != nil {
				return h, fmt.Errorf("%w: chunk %d fails authentication", ErrRefused, seq)
			}
			final = true
		}
		if _, err := dst.Write(chunk); err != nil {
			return h, fmt.Errorf("writing restored data: %w", err)
		}
		if final {
			if _, err := br.ReadByte(); err != io.EOF {
				return h, fmt.Errorf("%w: data after the final chunk", ErrRefused)
			}
			return h, nil
		}
	}
}

func readFrame(r io.Reader, limit int) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if int64(n) > int64(limit) {
		return nil, fmt.Errorf("frame of %d bytes is over the limit", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
