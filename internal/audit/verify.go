package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxRecord bounds one line, as the reader always has: a longer line is refused, not buffered.
const maxRecord = 4 << 20

// VerifyResult summarizes a verified log.
type VerifyResult struct {
	Records  int
	LastHash string
	// Bytes is the size of the verified part of the file (the whole file for Verify).
	Bytes int64
	// Checkpoint is the log's checkpoint when it had one; Verify checked it against the chain.
	Checkpoint *Checkpoint
	// StartsAfter names the rotated file this one continues (its first record is an OpLogStart
	// record); Verify checks a file alone, VerifySet the links between files.
	StartsAfter string
}

// Verify re-hashes the whole chain of the log at path and reports the first broken record. When
// the log has a checkpoint, Verify also checks that the chain reaches the checkpoint's hash and
// record count exactly at its offset: Open trusts the history before the checkpoint, and this is
// where that history is checked.
func Verify(path string) (VerifyResult, error) {
	// The checkpoint first: a running server only moves it forward, to data already in the file.
	ck, err := loadCheckpoint(checkpointPath(path))
	if err != nil {
		return VerifyResult{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	w := walker{mark: -1}
	if ck != nil {
		w.mark = ck.Offset
	}
	if err := w.walk(f); err != nil {
		return w.result(), err
	}
	res := w.result()
	if w.start != nil {
		res.StartsAfter = w.start.Predecessor
	}
	if ck != nil {
		if err := checkMark(ck, w.marked); err != nil {
			return res, fmt.Errorf("checkpoint %s: %w", checkpointPath(path), err)
		}
		res.Checkpoint = ck
	}
	return res, nil
}

// checkMark reports whether the chain state seen at the checkpoint's offset is the checkpoint's.
func checkMark(ck *Checkpoint, at *chainState) error {
	if at == nil {
		return fmt.Errorf("offset %d is not the end of a record in the file", ck.Offset)
	}
	if got := at.hash(); int64(at.Records) != ck.Records || got != ck.LastHash {
		return fmt.Errorf("the chain at offset %d is %d records ending in %s, the checkpoint says %d records ending in %s",
			ck.Offset, at.Records, got, ck.Records, ck.LastHash)
	}
	return nil
}

// VerifyHistory re-hashes the part of the log that Open did not (from the start to the
// checkpoint it resumed from) and checks that it ends where Open resumed. It reads the file
// through its own descriptor, so it can run in the background while the log is written; ctx
// stops it. When the history does not verify, the sink fails (Healthy reports false and writes
// return ErrUnavailable), as Open refused such a log when it re-hashed everything: it is Open's
// check, moved off the start-up path.
func (l *Log) VerifyHistory(ctx context.Context) (VerifyResult, error) {
	res, err := l.verifyHistory(ctx)
	if err != nil && ctx.Err() == nil {
		l.fatal.Store(true)
		l.failed.Store(true)
	}
	return res, err
}

func (l *Log) verifyHistory(ctx context.Context) (VerifyResult, error) {
	l.mu.Lock()
	path := l.histPath // the file Open resumed, wherever rotation moved it
	l.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verifying audit log: %w", err)
	}
	defer f.Close()
	w := walker{mark: -1, ctx: ctx}
	if err := w.walk(io.LimitReader(f, l.resumedFrom.Offset)); err != nil {
		return w.result(), fmt.Errorf("verifying audit log %s: %w", l.path, err)
	}
	if w.st != l.resumedFrom {
		return w.result(), fmt.Errorf("verifying audit log %s: the chain up to offset %d is %d records ending in %s, Open resumed from %d records ending in %s",
			l.path, l.resumedFrom.Offset, w.st.Records, w.st.hash(), l.resumedFrom.Records, l.resumedFrom.hash())
	}
	return w.result(), nil
}

// chainState is where a walk of the chain stands: the end offset of the last complete record,
// the number of records up to there and the hex hash of the last one (has is false before the
// first record, whose prevHash is "").
type chainState struct {
	Offset  int64
	Records int
	last    [2 * sha256.Size]byte
	has     bool
}

func (s *chainState) hash() string {
	if !s.has {
		return ""
	}
	return string(s.last[:])
}

// setHash sets the state's last hash from its hex form (validated by the caller).
func (s *chainState) setHash(h string) {
	s.has = h != ""
	copy(s.last[:], h)
}

var errIncomplete = errors.New("incomplete last record (no newline: cut off mid-write?)")

// splitRecords splits on '\n' and, unlike bufio.ScanLines, refuses a last line without one and
// keeps a '\r': a record is exactly the bytes that were hashed.
func splitRecords(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errIncomplete
	}
	return 0, nil, nil
}

// walker checks the chain of the records it reads, starting from st. When mark is an offset at
// which a record ends, marked holds the state there.
//
// Each record must be a JSON object whose prevHash is the hash of the record before it. Only the
// last record is parsed as JSON (and any record not in the writer's layout): every other one is
// vouched for by its successor, which carries its hash, so it is byte for byte a line the writer
// wrote, and the writer writes JSON (the known-answer vectors pin its format). This keeps Verify
// at the speed of SHA-256 instead of a JSON parser's, without accepting anything more.
type walker struct {
	st     chainState
	mark   int64
	marked *chainState
	last   []byte          // the last record read, parsed at the end
	ctx    context.Context // when set, stops the walk once done
	// start is the OpLogStart record a walk from the empty chain began with: the file continues
	// a rotated one, and its chain starts at that record's prevHash (checked by VerifySet).
	start *ChainCheckpoint
	// special, when set, is called with each of the log's own records (those with an
	// "auditCheckpoint" object) before st moves past it.
	special func(line []byte) error
}

var ckptKey = []byte(`,"auditCheckpoint":{`)

// mayBeOwn reports whether line may be one of the log's own records (with an auditCheckpoint
// object): the writer starts them with the time, then an operationName beginning with "Audit"
// (they have no resourceId). Only those are searched for the object, so that finding them does
// not slow `audit verify` down.
func mayBeOwn(line []byte) bool {
	const start, op = `{"time":"`, `","operationName":"Audit`
	if len(line) < 64 || string(line[:len(start)]) != start {
		return false
	}
	i := bytes.IndexByte(line[len(start):64], '"')
	return i >= 0 && bytes.HasPrefix(line[len(start)+i:], []byte(op)) && bytes.Contains(line, ckptKey)
}

// RecordError is a walk's failure at one record: its number (1-based) in the file and the offset
// it starts at. It quotes hashes, never record contents.
type RecordError struct {
	Record int
	Offset int64
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("record %d at offset %d: %v", e.Record, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

func (w *walker) result() VerifyResult {
	return VerifyResult{Records: w.st.Records, LastHash: w.st.hash(), Bytes: w.st.Offset}
}

// walk reads records from r, which must start at w.st.Offset, to its end. Errors name the record
// (1-based) and the offset it starts at; they quote hashes, never record contents.
func (w *walker) walk(r io.Reader) error {
	if w.mark == w.st.Offset {
		m := w.st
		w.marked = &m
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), maxRecord)
	sc.Split(splitRecords)
	for sc.Scan() {
		line := sc.Bytes()
		if err := w.link(line); err != nil {
			return &RecordError{Record: w.st.Records + 1, Offset: w.st.Offset, Err: err}
		}
		if w.special != nil && mayBeOwn(line) {
			if err := w.special(line); err != nil {
				return &RecordError{Record: w.st.Records + 1, Offset: w.st.Offset, Err: err}
			}
		}
		w.last = append(w.last[:0], line...)
		if w.ctx != nil && w.st.Records%4096 == 0 && w.ctx.Err() != nil {
			return &RecordError{Record: w.st.Records + 1, Offset: w.st.Offset, Err: w.ctx.Err()}
		}
		sum := sha256.Sum256(line)
		hex.Encode(w.st.last[:], sum[:])
		w.st.has = true
		w.st.Records++
		w.st.Offset += int64(len(line)) + 1
		if w.st.Offset == w.mark {
			m := w.st
			w.marked = &m
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("longer than %d bytes", maxRecord)
		}
		return &RecordError{Record: w.st.Records + 1, Offset: w.st.Offset, Err: err}
	}
	if w.last != nil && !json.Valid(w.last) {
		var rec struct{}
		return &RecordError{Record: w.st.Records, Offset: w.st.Offset - int64(len(w.last)) - 1, Err: fmt.Errorf("not JSON: %w", json.Unmarshal(w.last, &rec))}
	}
	return nil
}

// link checks that line's prevHash is the hash of the record before it.
func (w *walker) link(line []byte) error {
	var want []byte
	if w.st.has {
		want = w.st.last[:]
	}
	if endsWithPrevHash(line, want) {
		return nil
	}
	// Not the writer's layout, or another hash: read the field as encoding/json does.
	var rec struct {
		PrevHash *string          `json:"prevHash"`
		Op       string           `json:"operationName"`
		C        *ChainCheckpoint `json:"auditCheckpoint"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if rec.PrevHash == nil {
		return errors.New("not a record: no prevHash")
	}
	if c := rec.C; !w.st.has && rec.Op == OpLogStart && c != nil && c.Predecessor != "" && c.Hash == *rec.PrevHash &&
		len(c.Hash) == 64 && isHex([]byte(c.Hash)) {
		w.start = c // the first record of a file continuing a rotated one
		return nil
	}
	if *rec.PrevHash != string(want) {
		return fmt.Errorf("chain broken (prevHash %q, want %q)", clip([]byte(*rec.PrevHash)), want)
	}
	return nil
}

const prevKey = `,"prevHash":"`

// endsWithPrevHash reports whether line is in the writer's layout and chains to want (hex, or
// empty for the first record): an object ending in `,"prevHash":"<want>"}`. In valid JSON that
// comma is outside any string, so the key is the top-level object's last and want is the value
// encoding/json would decode. A line that is not valid JSON is caught at the end of the walk
// (the last record) or by its successor's prevHash (any other).
func endsWithPrevHash(line, want []byte) bool {
	n := len(prevKey) + len(want) + 2
	if len(line) <= n || line[0] != '{' {
		return false
	}
	t := line[len(line)-n:]
	return string(t[:len(prevKey)]) == prevKey && bytes.Equal(t[len(prevKey):n-2], want) && t[n-2] == '"' && t[n-1] == '}'
}

// clip bounds what an error quotes from a damaged line.
func clip(b []byte) []byte {
	if len(b) > 2*sha256.Size {
		return append(b[:2*sha256.Size:2*sha256.Size], "..."...)
	}
	return b
}
