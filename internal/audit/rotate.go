package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rotation: once the active file (audit.log) reaches Options.MaxFileBytes, the writer appends a
// final checkpoint record, fsyncs the file and renames it to audit-YYYYMMDDTHHMMSSZ.log (UTC time
// of rotation, "-N" added within the same second); the new audit.log starts with an OpLogStart
// record whose prevHash is the predecessor's last hash and which names the predecessor, its
// record count and the rotated files retention is about to delete. The files are deleted only
// once that record is fsynced, so every deletion is recorded in the chain before it happens.
//
// Crash safety: the checkpoint file is reset to the new, empty file right after the rename and
// before the new file exists. Open finds either the old file intact (the rotation did not
// happen), or no or an empty active file next to rotated ones: it then starts the active file
// with the start record linking it to the last rotated file (resumeRotated).

// Options tunes a Log; the zero value writes one file forever, with checkpoint records every
// 1000 records or 60 s while a signer is set.
type Options struct {
	MaxFileBytes       int64         // rotate at this size; 0 = never
	RetainFiles        int           // rotated files kept; 0 = all
	MinFreeBytes       int64         // low-disk alarm threshold; 0 = 512 MiB
	CheckpointRecords  int           // signed checkpoint after this many records; 0 = 1000
	CheckpointInterval time.Duration // or after this long, when records were written; 0 = 60 s
	Logger             *slog.Logger  // warnings (low disk, retention); nil = discarded
}

func (o *Options) fill() {
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 512 << 20
	}
	if o.CheckpointRecords <= 0 {
		o.CheckpointRecords = 1000
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// startChain sets what Open learned about the file's place in the rotated set, and chains the
// start record of a file that continues a rotated one. Call before the log runs.
func (l *Log) startChain(rs resumed, opts []Options) {
	if len(opts) > 0 {
		l.opts = opts[0]
	}
	l.opts.fill()
	l.histPath, l.seq, l.chained, l.lastCkptRec = l.path, rs.seq, int64(rs.end.Records), time.Now()
	if !rs.endsInCkpt && rs.end.Records > 0 {
		l.sinceCkpt, l.sinceSigned = 1, 1 // not known exactly: at least the last record is not covered
	}
	if rs.link != nil {
		l.lastHash, l.hasHash, l.chained, l.seq = rs.link.last, true, rs.link.records, rs.link.seq
		l.appendCheckpointLocked(OpLogStart, nil, rs.link.name)
	}
	names, _ := RotatedFiles(filepath.Dir(l.path))
	l.stats.rotated.Store(int64(len(names)))
	if len(names) > 0 {
		l.stats.lastName = names[len(names)-1]
	}
	l.stats.free.Store(-1)
}

// RotatedFiles returns the base names of the rotated audit files in dir, oldest first.
func RotatedFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing audit files: %w", err)
	}
	var names []string
	for _, e := range ents {
		if _, _, ok := parseRotatedName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	SortFiles(names)
	return names, nil
}

const rotatedLayout = "20060102T150405Z"

// parseRotatedName splits audit-<time>[-N].log into its time and N.
func parseRotatedName(name string) (string, int, bool) {
	rest, ok := strings.CutPrefix(name, "audit-")
	if !ok {
		return "", 0, false
	}
	if rest, ok = strings.CutSuffix(rest, ".log"); !ok || len(rest) < len(rotatedLayout) {
		return "", 0, false
	}
	ts, n := rest[:len(rotatedLayout)], 0
	if _, err := time.Parse(rotatedLayout, ts); err != nil {
		return "", 0, false
	}
	if suffix := rest[len(rotatedLayout):]; suffix != "" {
		digits, ok := strings.CutPrefix(suffix, "-")
		v, err := strconv.Atoi(digits)
		if !ok || err != nil || v < 1 || digits != strconv.Itoa(v) { // as internal/auditquery reads them
			return "", 0, false
		}
		n = v
	}
	return ts, n, true
}

// SortFiles orders audit file names chronologically: rotated files by time and then -N (plain
// lexical order puts "-1" before the unsuffixed name), then audit.log; other names keep their
// order, after the rotated ones and before audit.log.
func SortFiles(names []string) {
	rank := func(name string) (int, string, int) {
		base := filepath.Base(name)
		if ts, n, ok := parseRotatedName(base); ok {
			return 0, ts, n
		}
		if base == "audit.log" {
			return 2, "", 0
		}
		return 1, "", 0
	}
	sort.SliceStable(names, func(i, j int) bool {
		ri, ti, ni := rank(names[i])
		rj, tj, nj := rank(names[j])
		if ri != rj {
			return ri < rj
		}
		if ti != tj {
			return ti < tj
		}
		return ni < nj
	})
}

// rotatedName is a name for the active file rotated at t that sorts after every rotated file
// in dir and after last (the previous rotation's, whose file retention may have deleted), so
// that a name is never reused and order stays chronological even if the clock steps back.
func rotatedName(dir string, t time.Time, existing []string, last string) string {
	ts := t.UTC().Format(rotatedLayout)
	if lts, _, ok := parseRotatedName(last); ok && lts > ts {
		ts = lts
	}
	found, top := false, 0
	for _, name := range append(existing, last) {
		if ets, n, ok := parseRotatedName(name); ok && ets == ts {
			found, top = true, max(top, n)
		}
	}
	for n := top + 1; ; n++ {
		name := "audit-" + ts + ".log"
		if found {
			name = "audit-" + ts + "-" + strconv.Itoa(n) + ".log"
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
			return name
		}
		found = true
	}
}

// rotate ends the active file with a final checkpoint record, renames it and starts the new
// active file with the record linking it to its predecessor. It runs in the writer goroutine
// between batches, so nothing else writes; requests keep chaining into the new file's batch.
func (l *Log) rotate() {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	dir := filepath.Dir(l.path)
	name, removed, err := l.plan(dir)
	if err != nil {
		l.failRotation(nil, err)
		return
	}
	l.mu.Lock()
	if l.failed.Load() {
		l.mu.Unlock()
		return
	}
	if l.sinceCkpt > 0 || l.chained == 0 || (l.signer != nil && l.sinceSigned > 0) {
		l.appendCheckpointLocked(OpCheckpoint, nil, "") // a rotated file ends with one
	}
	fb := l.pending // everything chained so far ends the old file
	if fb == nil {
		fb = &batch{done: make(chan struct{})}
	}
	l.pending = nil
	l.appendCheckpointLocked(OpLogStart, removed, name) // the new file's first batch
	l.inflight, l.since = fb, time.Now()
	old := l.f
	l.mu.Unlock()
	nf, err := l.switchFile(old, fb.buf, name)
	if err != nil {
		l.failRotation(fb, err)
		return
	}
	l.stats.bytes.Add(int64(len(fb.buf)))
	l.mu.Lock()
	l.f, l.written, l.inflight = nf, chainState{}, nil
	if l.histPath == l.path {
		l.histPath = filepath.Join(dir, name)
	}
	if !fb.shut {
		buf := fb.buf
		fb.buf = nil
		batchBufs.Put(&buf)
	}
	fb.finish(nil)
	l.mu.Unlock()
	old.Close()
	l.ckpt, l.ckptAt, l.ckptErr = chainState{}, time.Now(), nil
	l.stats.toRemove = append(l.stats.toRemove, removed...)
	l.stats.rotated.Add(1)
	l.stats.lastName = name
	l.kick()
}

// plan names the file the active one is rotated to, and the rotated files retention releases
// (oldest first, not counting those already released). Call with ckptMu held.
func (l *Log) plan(dir string) (string, []string, error) {
	rotated, err := RotatedFiles(dir)
	if err != nil {
		return "", nil, err
	}
	kept := rotated[:0]
	for _, n := range rotated {
		if !slices.Contains(l.stats.toRemove, n) {
			kept = append(kept, n)
		}
	}
	var removed []string
	if n := l.opts.RetainFiles; n > 0 && len(kept)+1 > n {
		removed = kept[:len(kept)+1-n]
	}
	return rotatedName(dir, time.Now(), rotated, l.stats.lastName), removed, nil
}

// switchFile writes the old file's last batch, fsyncs it, renames the file to name, resets the
// checkpoint to an empty active file and creates that file.
func (l *Log) switchFile(old *os.File, last []byte, name string) (*os.File, error) {
	dir := filepath.Dir(l.path)
	if _, err := old.Write(last); err != nil {
		return nil, fmt.Errorf("writing audit log: %w", err)
	}
	if err := old.Sync(); err != nil {
		return nil, fmt.Errorf("syncing audit log: %w", err)
	}
	if err := os.Rename(l.path, filepath.Join(dir, name)); err != nil {
		return nil, fmt.Errorf("rotating audit log: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("rotating audit log: %w", err)
	}
	c := newCheckpoint(l.path, chainState{})
	c.Seq = l.seqNow()
	if err := saveCheckpoint(l.path, c); err != nil {
		return nil, err
	}
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rotating audit log: %w", err)
	}
	if err := syncDir(dir); err != nil {
		nf.Close()
		return nil, fmt.Errorf("rotating audit log: %w", err)
	}
	return nf, nil
}

func (l *Log) seqNow() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// failRotation fails the sink (fail-closed): Open recovers whatever step the rotation reached.
func (l *Log) failRotation(fb *batch, err error) {
	l.opts.Logger.Error("audit log rotation failed: requests are refused", "err", err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fatal.Store(true) // Open recovers a half-done rotation; a running log does not
	l.failed.Store(true)
	l.inflight = nil
	if fb != nil {
		fb.finish(fmt.Errorf("%v: %w", err, ErrUnavailable))
	}
	l.failPendingLocked()
}

// removeRetained deletes the rotated files retention released once the start record that names
// them is fsynced (st is the fsynced state of the active file). Call with ckptMu held.
func (l *Log) removeRetained(st chainState) {
	if len(l.stats.toRemove) == 0 || st.Records == 0 {
		return
	}
	dir := filepath.Dir(l.path)
	for _, name := range l.stats.toRemove {
		err := os.Remove(filepath.Join(dir, name))
		switch {
		case err == nil:
			l.stats.rotated.Add(-1)
			l.opts.Logger.Info("audit retention deleted a rotated file", "file", name)
		case !os.IsNotExist(err):
			l.opts.Logger.Warn("audit retention could not delete a rotated file", "file", name, "err", err)
		}
	}
	l.stats.toRemove = nil
	if err := syncDir(dir); err != nil {
		l.opts.Logger.Warn("audit retention: syncing the audit folder", "err", err)
	}
}

// resumeRotated is resume for an active file that is missing or empty: when rotated files exist
// (a crash during a rotation, or an active file removed by hand), the active file continues the
// last of them, and link describes its end. A checkpoint that records records must then be the
// last rotated file's (a crash between the rename and the reset of the checkpoint).
func resumeRotated(path string, ck *Checkpoint) (*linkInfo, error) {
	dir := filepath.Dir(path)
	names, err := RotatedFiles(dir)
	if errors.Is(err, fs.ErrNotExist) || len(names) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	name := names[len(names)-1]
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("reading the rotated audit file: %w", err)
	}
	defer f.Close()
	if ck != nil && ck.Records > 0 {
		if err := matchCheckpoint(&countingFile{f: f}, ck); err != nil {
			return nil, fmt.Errorf("audit log %s is missing or empty, and its checkpoint %s does not match the last rotated file %s either: %w",
				path, checkpointPath(path), name, err)
		}
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil, fmt.Errorf("the rotated audit file %s is empty or unreadable (%v)", name, err)
	}
	line, err := recordBefore(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("reading the end of the rotated audit file %s: %w", name, err)
	}
	link := &linkInfo{name: name}
	sum := sha256.Sum256(line)
	hex.Encode(link.last[:], sum[:])
	var rec struct {
		Op string           `json:"operationName"`
		C  *ChainCheckpoint `json:"auditCheckpoint"`
	}
	if json.Unmarshal(line, &rec) == nil && rec.Op == OpCheckpoint && rec.C != nil {
		link.records, link.seq = rec.C.Records+1, rec.C.Seq
		return link, nil
	}
	// Not ended by a rotation's checkpoint record: count its records.
	w := walker{mark: -1}
	if err := w.walk(io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return nil, fmt.Errorf("reading the rotated audit file %s: %w", name, err)
	}
	link.records = int64(w.st.Records)
	if w.start != nil {
		link.seq = w.start.Seq
	}
	return link, nil
}
