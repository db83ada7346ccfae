package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// resumed is what Open learned from the log: the chain state at the end of the file, the state
// the re-hash started from (the checkpoint's, or the empty chain when there was none), the
// checkpoint itself, and how many bytes of the log it read to get there.
type resumed struct {
	end, from chainState
	ckpt      *Checkpoint
	read      int64
	// seq is the file's sequence number; endsInCkpt whether its last record read is a
	// checkpoint record; link, when set, is the rotated file an empty active file continues.
	seq        int64
	endsInCkpt bool
	link       *linkInfo
}

// linkInfo is the end of the last rotated file: its name, last hash, records and sequence number.
type linkInfo struct {
	name    string
	last    [64]byte
	records int64
	seq     int64
}

// resume finds where the chain of the log at path ends, reading only what the checkpoint does
// not cover: the record the checkpoint ends at (to check the checkpoint against the file) and
// every record after it (each must chain to the one before, the last must be complete). Without
// a checkpoint it reads the whole file once. Any inconsistency is an error naming the file, the
// offset and what does not match; the log must then not be opened.
func resume(path string) (resumed, error) {
	ck, err := loadCheckpoint(checkpointPath(path))
	if err != nil {
		return resumed{}, err
	}
	res := resumed{ckpt: ck}
	if fi, err := os.Stat(path); (err == nil && fi.Size() == 0) || errors.Is(err, os.ErrNotExist) {
		if link, err := resumeRotated(path, ck); err != nil || link != nil {
			res.link = link
			return res, err
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if ck != nil && ck.Records > 0 {
			return res, fmt.Errorf("audit log %s is missing, but its checkpoint %s records %d records up to offset %d",
				path, checkpointPath(path), ck.Records, ck.Offset)
		}
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("reading audit log: %w", err)
	}
	defer f.Close()
	cf := &countingFile{f: f}
	if ck != nil {
		if err := matchCheckpoint(cf, ck); err != nil {
			res.read = cf.n
			return res, fmt.Errorf("audit log %s does not match its checkpoint %s: %w", path, checkpointPath(path), err)
		}
		res.from = ck.state()
	}
	if _, err := f.Seek(res.from.Offset, io.SeekStart); err != nil {
		return res, fmt.Errorf("reading audit log %s: %w", path, err)
	}
	w := walker{st: res.from, mark: -1}
	err = w.walk(cf)
	res.end, res.read = w.st, cf.n
	res.endsInCkpt = bytes.Contains(w.last, []byte(`"operationName":"`+OpCheckpoint+`"`))
	switch {
	case w.start != nil:
		res.seq = w.start.Seq
	case ck != nil:
		res.seq = ck.Seq
	}
	if err != nil {
		return res, fmt.Errorf("resuming audit log %s: %w", path, err)
	}
	return res, nil
}

// matchCheckpoint checks the checkpoint against the file: the file reaches its offset, a record
// ends there, and that record hashes to the checkpoint's hash. Records cut off the end, a
// changed last record or a checkpoint of another file fail here.
func matchCheckpoint(cf *countingFile, ck *Checkpoint) error {
	fi, err := cf.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < ck.Offset {
		return fmt.Errorf("the file is %d bytes, shorter than the checkpoint's offset %d: records were cut off its end",
			fi.Size(), ck.Offset)
	}
	if ck.Offset == 0 {
		return nil
	}
	got, err := hashRecordBefore(cf, ck.Offset)
	if err != nil {
		return err
	}
	if got != ck.LastHash {
		return fmt.Errorf("the record ending at offset %d hashes to %s, the checkpoint says %s: the record was changed",
			ck.Offset, got, ck.LastHash)
	}
	return nil
}

// hashRecordBefore returns the hex hash of the record that ends (with its newline) at end.
func hashRecordBefore(r io.ReaderAt, end int64) (string, error) {
	line, err := recordBefore(r, end)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:]), nil
}

// recordBefore returns the record that ends (with its newline) at end, without the newline,
// reading backwards from end in growing chunks until the newline before it or the file's start.
func recordBefore(r io.ReaderAt, end int64) ([]byte, error) {
	var tail []byte // the bytes [pos, end)
	pos, chunk := end, int64(4<<10)
	for {
		n := min(chunk, pos)
		b := make([]byte, n, n+int64(len(tail)))
		if _, err := r.ReadAt(b, pos-n); err != nil {
			return nil, fmt.Errorf("reading the record before offset %d: %w", end, err)
		}
		tail, pos = append(b, tail...), pos-n
		if tail[len(tail)-1] != '\n' {
			return nil, fmt.Errorf("offset %d is not the end of a record", end)
		}
		if i := bytes.LastIndexByte(tail[:len(tail)-1], '\n'); i >= 0 || pos == 0 {
			return tail[i+1 : len(tail)-1], nil
		}
		if len(tail) > maxRecord {
			return nil, fmt.Errorf("the record before offset %d is longer than %d bytes", end, maxRecord)
		}
		chunk *= 2
	}
}

// countingFile counts the bytes read from the log, so tests can check what Open reads.
type countingFile struct {
	f *os.File
	n int64
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// checkpointAtOpen makes the checkpoint describe the end of the chain Open resumed from, when it
// does not already: the first open of a log without one, or after a crash left it behind. The
// log is fsynced first: the records read may have been only in the page cache.
func (l *Log) checkpointAtOpen(rs resumed) error {
	if rs.ckpt != nil && rs.ckpt.Offset == rs.end.Offset {
		l.ckpt, l.ckptAt = rs.end, time.Now()
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("syncing audit log %s: %w", l.path, err)
	}
	return l.checkpoint(l.f, rs.end)
}
