package cluster

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// Snapshot files (`operator raft snapshot save|restore`) hold the whole replicated store as of
// one linearizable point, encrypted and authenticated:
//
//	magic "SRSNAP1\n"
//	uint32 BE header length | header = RootSealer.SealRoot("raft-snapshot", JSON snapshotHeader)
//	chunk* = uint32 BE length | AES-256-GCM(data key, nonce, chunk of at most 1 MiB, AAD magic)
//
// The data key is random per file and travels only in the root-sealed header, so a file opens
// on any deployment with the same root key (a fresh cluster made with the same seal) and nowhere
// else. Chunk nonces are the chunk's sequence number with a final flag: reordered, dropped,
// altered or appended chunks and a truncated file all fail before anything is restored.
const (
	snapMagic    = "SRSNAP1\n"
	snapPurpose  = "raft-snapshot"
	snapChunk    = 1 << 20
	maxSnapHdr   = 4096
	snapFinalBit = 1
)

// ErrSnapshotRefused means a snapshot file is damaged, truncated, tampered with or sealed under
// another root key.
var ErrSnapshotRefused = errors.New("snapshot refused: not intact or not sealed under this cluster's root key")

// RootSealer seals small payloads under the root key (keyring.Keyring implements it). A node has
// one only while unsealed.
type RootSealer interface {
	SealRoot(purpose string, plaintext []byte) ([]byte, error)
	OpenRoot(purpose string, blob []byte) ([]byte, error)
}

type sealerBox struct{ s RootSealer }

// SetRootSealer gives the node the unsealed keyring (nil when sealed again).
func (n *Node) SetRootSealer(s RootSealer) {
	if s == nil {
		n.sealer.Store(nil)
		return
	}
	n.sealer.Store(&sealerBox{s})
	if n.localCAKey.Load() != nil {
		n.wg.Add(1)
		go n.moveCAKeyToStore()
	}
}

func (n *Node) rootSealer() RootSealer {
	if b := n.sealer.Load(); b != nil {
		return b.s
	}
	return nil
}

type snapshotHeader struct {
	Key     []byte    `json:"key"`
	Index   uint64    `json:"index"`
	NodeID  string    `json:"nodeId"`
	Created time.Time `json:"created"`
}

// snapWriter encrypts a snapshot stream chunk by chunk.
type snapWriter struct {
	w   io.Writer
	a   cipher.AEAD
	buf []byte
	seq uint64
}

func snapNonce(seq uint64, final bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce, seq)
	if final {
		nonce[11] = snapFinalBit
	}
	return nonce
}

func (sw *snapWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), snapChunk-len(sw.buf))
		sw.buf = append(sw.buf, p[:take]...)
		p = p[take:]
		if len(sw.buf) == snapChunk {
			if err := sw.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (sw *snapWriter) flush(final bool) error {
	ct := sw.a.Seal(nil, snapNonce(sw.seq, final), sw.buf, []byte(snapMagic))
	sw.seq++
	sw.buf = sw.buf[:0]
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(ct)))
	if _, err := sw.w.Write(l[:]); err != nil {
		return err
	}
	_, err := sw.w.Write(ct)
	return err
}

// Close writes the final chunk.
func (sw *snapWriter) Close() error { return sw.flush(true) }

// writeSnapshot streams an encrypted snapshot of the store to w.
func (n *Node) writeSnapshot(ctx context.Context, w io.Writer) error {
	rs := n.rootSealer()
	if rs == nil {
		return errSealed
	}
	idx, err := WriteSnapshotFile(rs, filepath.Join(n.opts.DataDir, "raft"), n.cfg.NodeID, w, func(bw io.Writer) (uint64, error) {
		return n.store.Backup(ctx, bw)
	})
	if err == nil {
		n.log.Info("snapshot saved", "index", idx)
	}
	return err
}

// WriteSnapshotFile writes a snapshot file to w: backup writes the plaintext store file (a
// consistent bbolt copy) and returns the applied log index it holds (0 for a single node). The
// body goes through a temporary file in tmpDir first, because the header names the index.
func WriteSnapshotFile(rs RootSealer, tmpDir, nodeID string, w io.Writer, backup func(io.Writer) (uint64, error)) (uint64, error) {
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
	sw := &snapWriter{w: bw, a: a}
	idx, err := backup(sw)
	if err != nil {
		return 0, err
	}
	if err := sw.Close(); err != nil {
		return 0, fmt.Errorf("writing snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing snapshot: %w", err)
	}
	hdr, _ := json.Marshal(snapshotHeader{Key: key, Index: idx, NodeID: nodeID, Created: time.Now().UTC()})
	sealed, err := rs.SealRoot(snapPurpose, hdr)
	clear(hdr)
	if err != nil {
		return 0, err
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(sealed)))
	if _, err := io.WriteString(w, snapMagic); err != nil {
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

// openSnapshot authenticates and decrypts a whole snapshot stream into dst and returns its
// header; any defect fails with ErrSnapshotRefused before the caller uses dst.
func openSnapshot(rs RootSealer, r io.Reader, dst io.Writer) (snapshotHeader, error) {
	var h snapshotHeader
	br := bufio.NewReaderSize(r, 1<<16)
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		return h, fmt.Errorf("%w: not a Strongroom snapshot file", ErrSnapshotRefused)
	}
	hdr, err := readFrame(br, maxSnapHdr)
	if err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrSnapshotRefused, err)
	}
	pt, err := rs.OpenRoot(snapPurpose, hdr)
	if err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrSnapshotRefused, err)
	}
	if err := json.Unmarshal(pt, &h); err != nil || len(h.Key) != 32 {
		return h, fmt.Errorf("%w: header is malformed", ErrSnapshotRefused)
	}
	a, err := newGCM(h.Key)
	if err != nil {
		return h, err
	}
	for seq := uint64(0); ; seq++ {
		ct, err := readFrame(br, snapChunk+a.Overhead())
		if err != nil {
			return h, fmt.Errorf("%w: chunk %d: %v (truncated?)", ErrSnapshotRefused, seq, err)
		}
		chunk, err := a.Open(nil, snapNonce(seq, false), ct, []byte(snapMagic))
		final := false
		if err != nil {
			if chunk, err = a.Open(nil, snapNonce(seq, true), ct, []byte(snapMagic)); err != nil {
				return h, fmt.Errorf("%w: chunk %d fails authentication", ErrSnapshotRefused, seq)
			}
			final = true
		}
		if _, err := dst.Write(chunk); err != nil {
			return h, fmt.Errorf("writing restored data: %w", err)
		}
		if final {
			if _, err := br.ReadByte(); err != io.EOF {
				return h, fmt.Errorf("%w: data after the final chunk", ErrSnapshotRefused)
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

var errSealed = errors.New("this node is sealed: unseal it before taking or restoring a snapshot")

// restoreSnapshot verifies a whole snapshot stream into a temporary file, then replaces the
// cluster's state with it through Raft.
func (n *Node) restoreSnapshot(r io.Reader) (snapshotHeader, error) {
	rs := n.rootSealer()
	if rs == nil {
		return snapshotHeader{}, errSealed
	}
	tmp, err := os.CreateTemp(filepath.Join(n.opts.DataDir, "raft"), "snapshot-restore-*")
	if err != nil {
		return snapshotHeader{}, fmt.Errorf("creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	h, err := openSnapshot(rs, r, bw)
	if err != nil {
		return h, err
	}
	if err := bw.Flush(); err != nil {
		return h, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return h, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return h, err
	}
	// The cluster CA key record survives a restore (another cluster's snapshot lacks it).
	caKey, caErr := n.store.Get(context.Background(), n.caKeyRecord())
	if err := n.store.RestoreBackup(tmp, size, h.Index, 2*time.Minute); err != nil {
		return h, err
	}
	if caErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.store.Apply(ctx, []store.Op{store.Put(n.caKeyRecord(), caKey)})
		cancel()
		if err != nil {
			return h, fmt.Errorf("restored, but putting the cluster CA key record back failed (joins fail until it is): %w", err)
		}
	}
	n.log.Info("snapshot restored", "source_index", h.Index, "source_node", h.NodeID, "created", h.Created)
	return h, nil
}

func (n *Node) serveSnapshotSave(w http.ResponseWriter, r *http.Request) {
	if n.rootSealer() == nil {
		opFail(w, 503, errSealed)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	tw := &trackingWriter{w: w}
	if err := n.writeSnapshot(r.Context(), tw); err != nil {
		n.log.Error("saving snapshot", "err", err)
		if !tw.wrote {
			w.Header().Del("Content-Type")
			opFail(w, 503, err)
			return
		}
		panic(http.ErrAbortHandler) // the client sees a broken transfer, never a short file
	}
}

type trackingWriter struct {
	w     io.Writer
	wrote bool
}

func (t *trackingWriter) Write(p []byte) (int, error) { t.wrote = true; return t.w.Write(p) }

func (n *Node) serveSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	h, err := n.restoreSnapshot(r.Body)
	switch {
	case errors.Is(err, ErrSnapshotRefused):
		opFail(w, 400, err)
	case errors.Is(err, errSealed):
		opFail(w, 503, err)
	case err != nil:
		opFail(w, 500, err)
	default:
		writeJSON(w, 200, map[string]any{"restored": true, "sourceIndex": h.Index, "sourceNode": h.NodeID, "created": h.Created})
	}
}
