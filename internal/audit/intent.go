package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// The intent journal makes a change's audit record durable before the change commits, without
// an fsync of the log itself per request and without a second record per request in the chain.
//
// A request that is about to change stored state first writes its would-be record, its
// "intent", to a journal next to the log and waits for an fdatasync that concurrent requests
// share (group commit). Only then may its batch commit (store.RecordIntent). When the request is
// answered, its one outcome record goes into the log as usual; the intent is resolved. Two
// journal files alternate: each sync tick of the log (which fsyncs the log) switches new intents
// to the empty file and empties the other once all of its intents were resolved before that
// fsync, so a journal only ever holds a few seconds of writes.
//
// After a crash, Open reads the journals: an intent whose request id is not in the log after the
// offset the intent names lost its outcome record, and is recorded now with result "Unknown",
// because the change it announced may or may not have committed. So every acknowledged change
// has its record after a restart, and none commits without one.
//
// Journal line format: the log's written offset when the intent was taken (decimal), one space,
// then the record's JSON (the log's line format, unchained: prevHash ""), then "\n".

// IntentToken identifies a journaled intent, to resolve it once the outcome is recorded.
type IntentToken struct {
	gen  int8   // journal file index + 1; zero: not in the journal
	note string // the request id of a noted intent (IntentNote); "": none
}

// Valid reports whether t names an intent.
func (t IntentToken) Valid() bool { return t.gen != 0 || t.note != "" }

// unknownOutcome describes a request whose outcome record was lost in a crash.
const unknownOutcome = "The server stopped before this request's outcome was recorded; the change it announced may or may not have committed."

type intentJournal struct {
	files [2]*os.File

	mu       sync.Mutex
	active   int                  // the file new intents go to
	open     [2]int               // intents in file i not yet resolved
	used     [2]bool              // file i holds intents
	pending  *jbatch              // taken, not yet handed to the flusher
	inflight *jbatch              // being written and synced, since since
	good     [2]int64             // where file i's last fully synced batch ends (a resume cuts there)
	notes    map[string]*openNote // noted intents not yet resolved, by request id
	since    time.Time
	wake     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	failed   func() // fails the log (fail-closed)
	deadline time.Duration
}

type jbatch struct {
	file int
	n    int // intents in buf
	buf  []byte
	done chan struct{}
	err  error
	shut bool // done is closed
}

// finish records the outcome and wakes the waiters; call with j.mu held.
func (b *jbatch) finish(err error) {
	if b.shut {
		return
	}
	b.err, b.shut = err, true
	close(b.done)
}

func intentPath(logPath string, i int) string { return logPath + ".intents-" + strconv.Itoa(i) }

// openIntents opens (creating) the two journal files of the log at logPath.
func openIntents(logPath string, deadline time.Duration, failed func()) (*intentJournal, error) {
	j := &intentJournal{wake: make(chan struct{}, 1), done: make(chan struct{}), failed: failed, deadline: deadline}
	for i := range j.files {
		f, err := os.OpenFile(intentPath(logPath, i), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			j.close()
			return nil, fmt.Errorf("opening audit intent journal: %w", err)
		}
		j.files[i] = f
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			j.used[i] = true
		}
	}
	j.wg.Add(2)
	go j.flushLoop()
	go j.watchdog()
	return j, nil
}

func (j *intentJournal) close() {
	if j.done != nil {
		select {
		case <-j.done:
		default:
			close(j.done)
		}
	}
	j.wg.Wait()
	for _, f := range j.files {
		if f != nil {
			f.Close()
		}
	}
}

// Intend makes e's would-be record durable in the intent journal and returns its token; see the
// comment at the top of this file. e.Status is ignored: the outcome is not known yet.
func (l *Log) Intend(_ context.Context, e Event) (IntentToken, error) {
	if l.failed.Load() || l.intents == nil {
		return IntentToken{}, ErrUnavailable
	}
	e.Status = 0
	rec := NewRecord(e)
	lp := linePool.Get().(*[]byte)
	line := rec.appendJSON((*lp)[:0])
	j := l.intents
	l.mu.Lock()
	offset := l.written.Offset
	l.mu.Unlock()
	j.mu.Lock()
	b := j.pending
	if b == nil {
		b = &jbatch{file: j.active, done: make(chan struct{}), buf: (*batchBufs.Get().(*[]byte))[:0]}
		j.pending = b
	}
	b.buf = strconv.AppendInt(b.buf, offset, 10)
	b.buf = append(b.buf, ' ')
	b.buf = append(append(b.buf, line...), '"', '}', '\n')
	j.open[b.file]++
	b.n++
	j.used[b.file] = true
	tok := IntentToken{gen: int8(b.file + 1)}
	j.mu.Unlock()
	*lp = line
	linePool.Put(lp)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	// Not cut short by ctx: the intent is counted open until its outcome resolves it. The wait
	// is bounded by the journal's watchdog, which fails a batch stuck past the deadline.
	<-b.done
	if b.err != nil {
		l.failed.Store(true)
		return IntentToken{}, b.err
	}
	return tok, nil
}

// Resolve marks the intent t resolved: its outcome record has been written to the log.
func (l *Log) Resolve(t IntentToken) {
	if !t.Valid() || l.intents == nil {
		return
	}
	j := l.intents
	j.mu.Lock()
	if t.gen != 0 {
		j.open[t.gen-1]--
	}
	if t.note != "" {
		if n, ok := j.notes[t.note]; ok {
			if n.file != 0 { // persisted to the journal when its log segment was recycled
				j.open[n.file-1]--
			}
			delete(j.notes, t.note)
		}
	}
	j.mu.Unlock()
}

// IntentNote returns e's intent as a note for a store to log with the batch it announces (one
// write and one fdatasync for both: store.NotedIntent), and keeps it until Resolve, so that
// PersistNotes can move it to the journal before the store recycles the log segment holding
// it. The store hands logged notes back after a crash (RecoverNotes).
func (l *Log) IntentNote(e Event) (IntentToken, []byte, error) {
	if l.failed.Load() || l.intents == nil {
		return IntentToken{}, nil, ErrUnavailable
	}
	e.Status = 0
	if e.Time.IsZero() { // the intent's time, not the recovery's
		e.Time = time.Now()
	}
	if e.RequestID == "" {
		e.RequestID = uuid.NewString()
	}
	l.mu.Lock()
	offset := l.written.Offset
	l.mu.Unlock()
	note := appendNote(make([]byte, 0, 512), offset, &e)
	j := l.intents
	j.mu.Lock()
	if j.notes == nil {
		j.notes = make(map[string]*openNote)
	}
	j.notes[e.RequestID] = &openNote{note: note}
	j.mu.Unlock()
	return IntentToken{note: e.RequestID}, note, nil
}

// openNote is a noted intent not yet resolved; file is the journal file (index + 1) it was
// persisted to, 0 while it lives only in the store's log.
type openNote struct {
	note []byte // note.go
	file int
}

// PersistNotes makes every open noted intent durable on its own before the store recycles the
// log segments that hold them: it fsyncs the log (so resolved intents' outcomes are durable)
// and writes the unresolved ones to the journal. The store calls it before each checkpoint.
func (l *Log) PersistNotes() error {
	l.mu.Lock()
	f := l.f
	l.mu.Unlock()
	if err := f.Sync(); err != nil {
		l.failed.Store(true)
		return fmt.Errorf("syncing the audit log before a store checkpoint: %w", err)
	}
	j := l.intents
	j.mu.Lock()
	var b *jbatch
	for _, n := range j.notes {
		if n.file != 0 {
			continue
		}
		if b == nil {
			if b = j.pending; b == nil {
				b = &jbatch{file: j.active, done: make(chan struct{}), buf: (*batchBufs.Get().(*[]byte))[:0]}
				j.pending = b
			}
		}
		line, ok := journalLine(n.note)
		if !ok { // cannot happen: the note is our own
			continue
		}
		b.buf = append(append(b.buf, line...), '\n')
		n.file = b.file + 1
		j.open[b.file]++
		b.n++
		j.used[b.file] = true
	}
	j.mu.Unlock()
	if b == nil {
		return nil
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-b.done
	if b.err != nil {
		l.failed.Store(true)
		return fmt.Errorf("persisting audit intents before a store checkpoint: %w", b.err)
	}
	return nil
}

// RecoverNotes records every note a store logged whose outcome never reached the log (a crash
// between the two), as recoverIntents does for the journal. The app calls it once the store has
// replayed its log.
func (l *Log) RecoverNotes(notes [][]byte) error {
	var lines []intentLine
	for _, n := range notes {
		if in, ok := noteIntent(n); ok {
			lines = append(lines, in)
		}
	}
	return l.recordLost(lines)
}

// flushLoop writes and fdatasyncs each pending batch; requests that arrive meanwhile share the
// next one.
func (j *intentJournal) flushLoop() {
	defer j.wg.Done()
	for {
		select {
		case <-j.wake:
		case <-j.done:
			return
		}
		j.mu.Lock()
		b := j.pending
		j.pending = nil
		j.inflight, j.since = b, time.Now()
		var f *os.File
		if b != nil {
			f = j.files[b.file]
		}
		j.mu.Unlock()
		if b == nil {
			continue
		}
		var err error
		if _, werr := f.Write(b.buf); werr != nil {
			err = fmt.Errorf("writing audit intent: %v: %w", werr, ErrUnavailable)
		} else if serr := unix.Fdatasync(int(f.Fd())); serr != nil {
			err = fmt.Errorf("syncing audit intent: %v: %w", serr, ErrUnavailable)
		}
		if err != nil {
			j.failed()
		}
		j.mu.Lock()
		j.inflight = nil
		if err == nil {
			j.good[b.file] += int64(len(b.buf))
		}
		if !b.shut { // the watchdog may have given up on it; then the buffer is left alone
			buf := b.buf[:0]
			b.buf = nil
			batchBufs.Put(&buf)
		}
		j.finishLocked(b, err)
		j.mu.Unlock()
	}
}

// finishLocked ends b; a failed batch's intents are no longer open, since their requests were
// refused before anything committed. Call with j.mu held.
func (j *intentJournal) finishLocked(b *jbatch, err error) {
	if b.shut {
		return
	}
	if err != nil {
		j.open[b.file] -= b.n
	}
	b.finish(err)
}

// watchdog fails a batch whose write or sync has taken longer than the deadline (a hung disk),
// so that its requests are refused in bounded time instead of waiting for the disk.
func (j *intentJournal) watchdog() {
	defer j.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-j.done:
			return
		}
		j.mu.Lock()
		if b := j.inflight; b != nil && time.Since(j.since) > j.deadline {
			j.failed()
			j.finishLocked(b, fmt.Errorf("writing audit intent: deadline exceeded: %w", ErrUnavailable))
		}
		j.mu.Unlock()
	}
}

// beforeLogSync is called just before the log is fsynced: it picks the file that may be emptied
// after that fsync (every intent in it resolved, so its outcome is in what the fsync covers) and
// switches new intents to an empty file.
func (j *intentJournal) beforeLogSync() (clear int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	other := 1 - j.active
	if !j.used[other] {
		j.active = other // the old active file drains; a later tick empties it
		return -1
	}
	if j.open[other] == 0 && (j.pending == nil || j.pending.file != other) {
		return other
	}
	return -1
}

// afterLogSync empties file i (from beforeLogSync) once the log's fsync succeeded.
func (j *intentJournal) afterLogSync(i int) {
	if i < 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.open[i] != 0 || i == j.active {
		return
	}
	if err := j.files[i].Truncate(0); err != nil {
		return // kept: the next tick retries, and recovery tolerates resolved intents
	}
	j.used[i], j.good[i] = false, 0
}

// recoverIntents records every journaled intent whose outcome never reached the log (a crash
// between the two), then empties the journals. It runs in Open, after the log resumed.
func (l *Log) recoverIntents() error {
	var intents []intentLine
	for _, f := range l.intents.files {
		lines, err := readIntents(f)
		if err != nil {
			return err
		}
		intents = append(intents, lines...)
	}
	if err := l.recordLost(intents); err != nil {
		return err
	}
	j := l.intents
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, f := range j.files {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("emptying the audit intent journal: %w", err)
		}
		j.used[i], j.good[i] = false, 0
	}
	return nil
}

// recordLost records, once each, the intents whose request id is not in the log after the
// offset they name, with result "Unknown", and syncs the log.
func (l *Log) recordLost(intents []intentLine) error {
	if len(intents) == 0 {
		return nil
	}
	from := intents[0].offset
	for _, in := range intents {
		from = min(from, in.offset)
	}
	seen, err := requestIDsAfter(l.path, from)
	if err != nil {
		return err
	}
	recovered := 0
	for _, in := range intents {
		if seen[in.rec.RequestID] {
			continue
		}
		seen[in.rec.RequestID] = true
		rec := in.rec
		rec.ResultType, rec.ResultSignature, rec.ResultDescription = "Unknown", "Unknown", unknownOutcome
		rec.Properties.HTTPStatusCode = 0
		if err := l.Write(context.Background(), &rec); err != nil {
			return fmt.Errorf("recording a recovered audit intent: %w", err)
		}
		recovered++
	}
	if recovered > 0 {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("syncing recovered audit intents: %w", err)
		}
	}
	return nil
}

type intentLine struct {
	offset int64
	rec    Record
}

// readIntents parses a journal file; a torn last line (a crash mid-write, never synced, so
// never acknowledged) is ignored.
func readIntents(f *os.File) ([]intentLine, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading the audit intent journal: %w", err)
	}
	var out []intentLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if in, ok := parseIntentLine(sc.Bytes()); ok {
			out = append(out, in)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("reading the audit intent journal: %w", err)
	}
	return out, nil
}

// parseIntentLine parses "<offset> <record JSON>"; a damaged line is not an intent.
func parseIntentLine(line []byte) (intentLine, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return intentLine{}, false
	}
	off, err := strconv.ParseInt(string(line[:sp]), 10, 64)
	if err != nil {
		return intentLine{}, false
	}
	var in intentLine
	if err := json.Unmarshal(line[sp+1:], &in.rec); err != nil || in.rec.RequestID == "" {
		return intentLine{}, false
	}
	in.offset = off
	return in, true
}

// requestIDsAfter returns the request ids of the log's records from offset on.
func requestIDsAfter(path string, offset int64) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the audit log for intent recovery: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading the audit log for intent recovery: %w", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r struct {
			RequestID string `json:"requestId"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.RequestID != "" {
			seen[r.RequestID] = true
		}
	}
	return seen, sc.Err()
}
