package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/store"
)

// The write-ahead log (OpenWithWAL) makes a group commit one sequential write and one fdatasync
// instead of a bbolt transaction (tens of scattered page writes and two fdatasyncs). Batches
// become durable in the log, visible through the overlay, and reach the bbolt file in large
// checkpoints that write each touched page once for many batches.
//
// On-disk format (version 1). The log lives in the folder <store file>.wal and consists of
// segment files named by their sequence number (16 lower-case hex digits, ".log"). Each segment
// is filled with records:
//
//	seq (8 bytes BE) | payload length (4 bytes BE) | CRC-32C of seq, length and payload (4 bytes BE) | payload
//
// where payload is store.AppendOps of the batches' writes (puts and deletes only: preconditions
// were checked before logging). A record whose seq differs from its segment's, whose length runs
// past the file or whose checksum fails ends the segment: segment files are pre-zeroed and then
// recycled, so what follows the last record is zeros, a torn write, or records of the file's
// previous life (an older seq). The bbolt file's meta key "walFlushed" holds the last segment
// whose records are all in the file; opening replays the later segments into the file.
const (
	walHeaderLen = 16
	// segmentSize is the size segment files are pre-zeroed to: an fdatasync after overwriting
	// allocated blocks costs about half of one after an append, which must also journal the size.
	segmentSize = 16 << 20
	// stallAt is how large a segment may grow while the previous checkpoint is still running;
	// past it the commit loop waits, which bounds memory and replay time.
	stallAt = 128 << 20
)

// defaultCheckpointBytes is how full a segment gets before its batches are checkpointed into the
// file, unless WALOptions says otherwise (a variable so that tests can make checkpoints frequent).
var defaultCheckpointBytes int64 = 8 << 20

// MinCheckpointBytes is the smallest WALOptions.CheckpointBytes accepted.
const MinCheckpointBytes = 4 << 10

// WALOptions tunes the write-ahead log; the zero value is the default.
type WALOptions struct {
	// CheckpointBytes is how many logged bytes of writes start a checkpoint into the file
	// (default 8 MiB, at most the 16 MiB a segment is prepared to; the notes riding with the
	// batches do not count, and a segment that fills its 16 MiB is checkpointed regardless).
	// Smaller means less memory and a shorter replay after a crash, and more frequent file
	// transactions.
	CheckpointBytes int64
	// Notes receives, while the store opens, the notes (store.OpNote: audit intents) of the
	// batches replayed from the log, before the log's segments are recycled; an error stops the
	// open. Nil: notes are dropped.
	Notes func(notes [][]byte) error
	// BeforeCheckpoint runs before each checkpoint records a segment as flushed (after which its
	// notes are gone): whoever keeps notes makes the ones it still needs durable elsewhere. An
	// error fails the checkpoint, and with it the store's writes.
	BeforeCheckpoint func() error
}

var keyWALFlushed = []byte("walFlushed")

// segment is one open log file.
type segment struct {
	f   *os.File
	seq uint64
	off int64 // where the next record goes
	// notes is how many of the segment's bytes are notes (audit intents), which the overlay
	// does not hold: they do not count towards the checkpoint threshold.
	notes int64
}

// wal is the log's writer side. Only the commit loop uses cur; spare is handed over by the
// checkpointer under overlay.mu.
type wal struct {
	dir   string
	cur   segment
	spare *segment // the next segment, already named cur.seq+1 and durable in the folder
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x.log", seq) }

// append writes one record holding ops to the current segment and waits until it is durable.
func (w *wal) append(ops []store.Op) (payload []byte, err error) {
	n := store.EncodedLen(ops)
	rec := make([]byte, walHeaderLen, walHeaderLen+n)
	rec = store.AppendOps(rec, ops)
	binary.BigEndian.PutUint64(rec[0:8], w.cur.seq)
	binary.BigEndian.PutUint32(rec[8:12], uint32(n))
	crc := crc32.Update(crc32.Checksum(rec[:12], castagnoli), castagnoli, rec[walHeaderLen:])
	binary.BigEndian.PutUint32(rec[12:16], crc)
	if _, err := w.cur.f.WriteAt(rec, w.cur.off); err != nil {
		return nil, fmt.Errorf("writing log segment %d: %w", w.cur.seq, err)
	}
	if err := fdatasync(w.cur.f); err != nil {
		return nil, fmt.Errorf("syncing log segment %d: %w", w.cur.seq, err)
	}
	w.cur.off += int64(len(rec))
	return rec[walHeaderLen:], nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// readSegment returns the payloads of the valid records at the start of a segment file.
func readSegment(path string, seq uint64) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading log segment %s: %w", path, err)
	}
	return parseSegment(data, seq), nil
}

// parseSegment returns the payloads of the valid records of segment seq at the start of data.
func parseSegment(data []byte, seq uint64) [][]byte {
	var out [][]byte
	for off := 0; len(data)-off >= walHeaderLen; {
		h := data[off : off+walHeaderLen]
		n := int(binary.BigEndian.Uint32(h[8:12]))
		if binary.BigEndian.Uint64(h[0:8]) != seq || n > len(data)-off-walHeaderLen {
			break
		}
		payload := data[off+walHeaderLen : off+walHeaderLen+n]
		if crc32.Update(crc32.Checksum(h[:12], castagnoli), castagnoli, payload) != binary.BigEndian.Uint32(h[12:16]) {
			break
		}
		out = append(out, payload)
		off += walHeaderLen + n
	}
	return out
}

// listSegments returns the sequence numbers of the segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing log folder: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(name) != 16 {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// recoverWAL replays every logged batch that the file does not hold yet, records that the file
// holds them, and leaves two segment files ready: the current one and the spare. It runs before
// the store serves anything.
func recoverWAL(db *bbolt.DB, dir string, notesTo func([][]byte) error) (*wal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log folder: %w", err)
	}
	flushed, err := readWALFlushed(db)
	if err != nil {
		return nil, err
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	last := flushed
	var replay [][]byte
	for _, seq := range seqs {
		if seq <= flushed {
			continue
		}
		recs, err := readSegment(filepath.Join(dir, segmentName(seq)), seq)
		if err != nil {
			return nil, err
		}
		replay = append(replay, recs...)
		last = seq
	}
	if notesTo != nil {
		if err := notesTo(replayedNotes(replay)); err != nil {
			return nil, fmt.Errorf("handing over the log's notes: %w", err)
		}
	}
	if last != flushed {
		err := db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketKV)
			b.FillPercent = fillPercent
			for _, payload := range replay {
				ops, err := store.DecodeOps(payload)
				if err != nil {
					return fmt.Errorf("decoding a logged batch: %w", err)
				}
				if err := applyOps(b, ops); err != nil {
					return err
				}
			}
			return putWALFlushed(tx, last)
		})
		if err != nil {
			return nil, fmt.Errorf("replaying the write-ahead log: %w", err)
		}
	}
	// Every existing segment is now in the file: reuse two of them as the next segments.
	w := &wal{dir: dir}
	cur, err := prepareSegment(dir, seqs, last+1)
	if err != nil {
		return nil, err
	}
	seqs = removeSeq(seqs, cur.reused)
	spare, err := prepareSegment(dir, seqs, last+2)
	if err != nil {
		cur.f.Close()
		return nil, err
	}
	seqs = removeSeq(seqs, spare.reused)
	for _, seq := range seqs {
		if err := os.Remove(filepath.Join(dir, segmentName(seq))); err != nil {
			return nil, fmt.Errorf("removing log segment: %w", err)
		}
	}
	if err := syncDir(filepath.Join(dir, "x")); err != nil {
		return nil, err
	}
	w.cur = segment{f: cur.f, seq: last + 1}
	w.spare = &segment{f: spare.f, seq: last + 2}
	return w, nil
}

// replayedNotes collects the notes of the logged batches.
func replayedNotes(replay [][]byte) [][]byte {
	var notes [][]byte
	for _, payload := range replay {
		ops, err := store.DecodeOps(payload)
		if err != nil {
			continue // the replay reports it
		}
		for _, op := range ops {
			if op.Kind == store.OpNote {
				notes = append(notes, op.Value)
			}
		}
	}
	return notes
}

type prepared struct {
	f      *os.File
	reused uint64 // the old seq of a renamed file, 0 when newly made
}

// prepareSegment names a file seq: an obsolete segment from old when there is one (renamed),
// a new pre-zeroed file otherwise. The caller syncs the folder.
func prepareSegment(dir string, old []uint64, seq uint64) (prepared, error) {
	path := filepath.Join(dir, segmentName(seq))
	if len(old) > 0 {
		if err := os.Rename(filepath.Join(dir, segmentName(old[0])), path); err != nil {
			return prepared{}, fmt.Errorf("recycling log segment: %w", err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0o600)
		if err != nil {
			return prepared{}, fmt.Errorf("opening log segment: %w", err)
		}
		if err := zeroTo(f, segmentSize, false); err != nil {
			f.Close()
			return prepared{}, err
		}
		return prepared{f: f, reused: old[0]}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return prepared{}, fmt.Errorf("creating log segment: %w", err)
	}
	if err := zeroTo(f, segmentSize, false); err != nil {
		f.Close()
		return prepared{}, err
	}
	return prepared{f: f}, nil
}

// zeroTo writes zeros from the file's end up to size (or over the whole file when all is set,
// which scrubs old records) and syncs it, so later records overwrite allocated blocks.
func zeroTo(f *os.File, size int64, all bool) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sizing log segment: %w", err)
	}
	from := fi.Size()
	if all {
		from, size = 0, max(size, fi.Size())
	}
	if from >= size {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for off := from; off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("preparing log segment: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("preparing log segment: %w", err)
	}
	return nil
}

func removeSeq(seqs []uint64, seq uint64) []uint64 {
	for i, s := range seqs {
		if s == seq && seq != 0 {
			return append(seqs[:i:i], seqs[i+1:]...)
		}
	}
	return seqs
}

func readWALFlushed(db *bbolt.DB) (uint64, error) {
	var seq uint64
	err := db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyWALFlushed); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("reading %s: bad length %d", keyWALFlushed, len(v))
			}
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

func putWALFlushed(tx *bbolt.Tx, seq uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], seq)
	return tx.Bucket(bucketMeta).Put(keyWALFlushed, buf[:])
}

// setWALFlushed records seq in a closed store file (a restored snapshot before it is swapped in),
// so that no segment of this log is replayed onto content that never saw it.
func setWALFlushed(path string, seq uint64) error {
	db, err := bbolt.Open(path, 0o600, fileOptions())
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return putWALFlushed(tx, seq) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
