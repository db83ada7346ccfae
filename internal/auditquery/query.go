// Package auditquery answers queries over the audit folder: it streams the AuditEvent JSON lines
// of the rotated files (audit-YYYYMMDDTHHMMSSZ[-N].log) and then the active one (audit.log) in the
// order they were written, keeps the records a Filter selects, and stops at a bounded page with
// a continuation token. It reads the files only (no server, no store, no keys: no record holds a
// secret value), one line at a time, so memory stays bounded by the page whatever the log's size.
// Both the server's audit query route and the CLI's local `monitor log query --dir` use it, so
// the two answer alike.
//
// It is a leaf: it reads the record format documented in docs/architecture.md and imports
// nothing of the server's, so the CLI may use it.
package auditquery

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
	"path/filepath"
	"strings"
	"time"
)

const (
	// DefaultLimit and MaxLimit bound the records of one page.
	DefaultLimit = 1000
	MaxLimit     = 10000
	// DefaultMaxScan bounds the lines one page reads; a page that reaches it ends early with a
	// continuation token, so a query matching nothing in a large log still answers in bounded time.
	DefaultMaxScan = 200_000
	// MaxLineBytes is the longest line read; longer lines are skipped (a record is far shorter).
	MaxLineBytes = 1 << 20
	// Skew is how far a record's time may precede a record written before it: a record is
	// timed when its request is answered and written within the sink's deadline after that. It
	// widens the time bounds used to skip whole files.
	Skew = time.Minute
)

// ErrStaleToken means a continuation token names a position the folder no longer holds.
var ErrStaleToken = errors.New("the continuation token does not match the audit log (the log was rotated away or rewritten)")

// Query is one page's request.
type Query struct {
	Filter
	// Limit is the most records returned (0: DefaultLimit; at most MaxLimit).
	Limit int
	// MaxScan is the most lines read (0: DefaultMaxScan; negative: unbounded, for offline use).
	MaxScan int
	// Token continues after the page that returned it.
	Token string
}

// Page is one answer.
type Page struct {
	// Records are the matching lines as written (AuditEvent JSON), oldest first.
	Records []json.RawMessage
	// Next continues the query after Records; "" when the log holds nothing more to read.
	Next string
	// Scanned counts the lines read; Skipped the lines that were not records (torn, too long).
	Scanned, Skipped int
}

// Run reads one page of the query over the audit folder dir.
func Run(ctx context.Context, dir string, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	maxScan := q.MaxScan
	if maxScan == 0 {
		maxScan = DefaultMaxScan
	}
	files, err := listFiles(dir)
	if err != nil {
		return Page{}, err
	}
	first, at := 0, position{}
	if q.Token != "" {
		tok, err := parseToken(q.Token)
		if err != nil {
			return Page{}, err
		}
		if first, at, err = locate(dir, files, tok); err != nil {
			return Page{}, err
		}
	}
	s := &scan{ctx: ctx, q: &q, limit: limit, maxScan: maxScan, pre: prefilter(&q.Filter)}
	for i := first; i < len(files); i++ {
		f := files[i]
		from := int64(0)
		if i == first {
			from = at.offset
		}
		// A rotated file holds records timed before its rotation (its name, to the second).
		if !q.Since.IsZero() && !f.active && !f.rotated.Add(time.Second).After(q.Since) {
			continue
		}
		// Records written after a rotation are timed at most Skew before it.
		if !q.Until.IsZero() && i > 0 && !files[i-1].active && !files[i-1].rotated.Add(-Skew).Before(q.Until) {
			break
		}
		done, err := s.file(filepath.Join(dir, f.name), f.name, from)
		if err != nil {
			return s.page, err
		}
		if done {
			break
		}
	}
	if s.stopped {
		s.page.Next = s.last.token()
	}
	return s.page, nil
}

// scan is one page being read.
type scan struct {
	ctx            context.Context
	q              *Query
	limit, maxScan int
	page           Page
	last           position // after the last line read
	stopped        bool     // the page ended before the log did
	pre            [][][]byte
	lower          []byte // scratch: the line in lower case
}

// prefilter lists, for the text filters, byte strings a matching line must contain (one of
// each group), lower-cased: most lines of a selective query fail this without being decoded,
// which costs several times more. A value JSON would escape gets no group (decoding decides).
func prefilter(f *Filter) [][][]byte {
	safe := func(v string) bool {
		for _, c := range v {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._@:", c)) {
				return false
			}
		}
		return v != ""
	}
	var groups [][][]byte
	for _, v := range []string{f.Vault, f.Secret, f.Caller} {
		if safe(v) {
			groups = append(groups, [][]byte{[]byte(strings.ToLower(v))})
		}
	}
	var ops [][]byte
	for _, op := range f.Operations {
		if !safe(op) {
			return groups
		}
		ops = append(ops, []byte(`"operationname":"`+strings.ToLower(op)+`"`))
	}
	if len(ops) > 0 {
		groups = append(groups, ops)
	}
	return groups
}

// passes reports whether line contains a needle of every prefilter group.
func (s *scan) passes(line []byte) bool {
	if len(s.pre) == 0 {
		return true
	}
	s.lower = append(s.lower[:0], line...)
	for i, c := range s.lower {
		if c >= 'A' && c <= 'Z' {
			s.lower[i] = c + 'a' - 'A'
		}
	}
	for _, group := range s.pre {
		found := false
		for _, n := range group {
			if bytes.Contains(s.lower, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// file reads name from offset from; done reports that the page is complete or that nothing
// later can match.
func (s *scan) file(path, name string, from int64) (done bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) { // removed by retention since it was listed
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var long []byte // a line longer than the reader's buffer, being assembled
	off, firstLine := from, from == 0
	for {
		if s.page.Scanned%1024 == 0 {
			if err := s.ctx.Err(); err != nil {
				return true, err
			}
		}
		if s.maxScan > 0 && s.page.Scanned >= s.maxScan {
			s.stopped = true
			return true, nil
		}
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) <= MaxLineBytes {
				long = append(long, chunk...)
			} else {
				long = append(long[:0], 'x') // too long: remember only that something was there
			}
			off += int64(len(chunk))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		if errors.Is(err, io.EOF) {
			// An incomplete last line is a write in progress (or a torn tail): not read yet.
			return false, nil
		}
		line := chunk[:len(chunk)-1]
		tooLong := false
		if long != nil {
			tooLong = len(long)+len(chunk) > MaxLineBytes || bytes.Equal(long, []byte{'x'})
			line = append(long, line...)
			long = nil
		}
		off += int64(len(chunk))
		s.page.Scanned++
		s.last = position{file: name, offset: off, hash: lineHash(line)}
		if tooLong {
			s.page.Skipped++
			continue
		}
		match, beyond, ok := s.match(line, firstLine)
		firstLine = false
		if !ok {
			s.page.Skipped++
			continue
		}
		if beyond {
			return true, nil
		}
		if match {
			s.page.Records = append(s.page.Records, json.RawMessage(bytes.Clone(line)))
			if len(s.page.Records) >= s.limit {
				s.stopped = true
				return true, nil
			}
		}
	}
}

// match decodes line and applies the filter; ok is false for a line that is not a record, and
// beyond reports a file's first record so far after Until that no later record can match.
func (s *scan) match(line []byte, first bool) (match, beyond, ok bool) {
	// The time is checked before the line is decoded: most lines of a bounded query fail it.
	t, decoded := fastTime(line)
	var v view
	if !decoded {
		if json.Unmarshal(line, &v) != nil {
			return false, false, false
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v.Time); err != nil {
			return false, false, false
		}
	}
	q := s.q
	if !q.Until.IsZero() && first && !t.Add(-Skew).Before(q.Until) {
		return false, true, true
	}
	if !q.Since.IsZero() && t.Before(q.Since) || !q.Until.IsZero() && !t.Before(q.Until) {
		return false, false, true
	}
	if !s.passes(line) {
		return false, false, true
	}
	if decoded && json.Unmarshal(line, &v) != nil {
		return false, false, false
	}
	if v.OperationName == "" { // a JSON line, but not a record (a marker or a header)
		return false, false, false
	}
	return q.matchRest(&v), false, true
}

// fastTime reads the time of a line the server wrote, which starts {"time":"<TimeLayout>",
// without decoding the line.
func fastTime(line []byte) (time.Time, bool) {
	const prefix = `{"time":"`
	const layout = "2006-01-02T15:04:05.0000000Z"
	if len(line) < len(prefix)+len(layout)+1 || !bytes.HasPrefix(line, []byte(prefix)) || line[len(prefix)+len(layout)] != '"' {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, string(line[len(prefix):len(prefix)+len(layout)]))
	return t, err == nil
}

// lineHash is the hex SHA-256 of a line without its newline: the next record's prevHash.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}
