package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VerifyOptions are the trust anchors of VerifySet.
type VerifyOptions struct {
	// Keys are the public keys checkpoints must be signed with (pinned by the auditor). Without
	// keys signatures are not checked, and the report says so.
	Keys []ed25519.PublicKey
	// Partial says the files are a chosen part of the log, not the whole audit folder: a first
	// file that continues a file not given is then noted, not a problem.
	Partial bool
}

// Problem is the first sign of tampering VerifySet found: the file, the record (1-based in the
// file; 0 = the file as a whole), the offset it starts at and why.
type Problem struct {
	File   string `json:"file"`
	Record int    `json:"record"`
	Offset int64  `json:"offset"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string {
	if p.Record == 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Reason)
	}
	return fmt.Sprintf("%s: record %d at offset %d: %s", p.File, p.Record, p.Offset, p.Reason)
}

// FileReport is what VerifySet found in one file.
type FileReport struct {
	File        string `json:"file"`
	Records     int    `json:"records"`
	Bytes       int64  `json:"bytes"`
	Seq         int64  `json:"seq"`
	StartsAfter string `json:"startsAfter,omitempty"` // the predecessor its first record links to
	Checkpoints int    `json:"checkpoints"`           // checkpoint and start records
	Signed      int    `json:"signed"`                // of those, validly signed under a pinned key
	LastSigned  int    `json:"lastSigned,omitempty"`  // record number of the last validly signed one
	// CheckpointFile is the file's checkpoint (the active file's), checked against the chain.
	CheckpointFile *Checkpoint `json:"checkpointFile,omitempty"`
}

// SetReport is the result of VerifySet. Problem is set when the set is not intact (and is the
// error VerifySet returns); Notes say what the set cannot prove.
type SetReport struct {
	Files             []FileReport `json:"files"`
	Records           int          `json:"records"`
	LastHash          string       `json:"lastHash"`
	SignaturesChecked bool         `json:"signaturesChecked"`
	Signed            int          `json:"signedCheckpoints"`
	// UnsignedTail is how many records at the end of the set no valid signature covers.
	UnsignedTail int      `json:"unsignedTail"`
	Notes        []string `json:"notes,omitempty"`
	Problem      *Problem `json:"problem,omitempty"`
}

// FilesIn lists the audit files of dir in order: rotated files oldest first, then audit.log.
func FilesIn(dir string) ([]string, error) {
	names, err := RotatedFiles(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "audit.log")); err == nil && fi.Mode().IsRegular() {
		names = append(names, "audit.log")
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out, nil
}

// fileEnd is where a verified file ended: what its successor's start record must name.
type fileEnd struct {
	name       string
	records    int
	last       string
	seq        int64
	endsInCkpt bool
}

// VerifySet checks an ordered set of audit files (oldest first, the active file last): each
// file's chain, every checkpoint and start record (counts, hashes, sequence numbers and, with
// keys, signatures), the links between files and, for a file with a checkpoint file, that the
// chain reaches it. It stops at the first problem, which it returns as a *Problem. A first file
// that continues a missing predecessor passes only if a start record in the set says retention
// removed that predecessor.
func VerifySet(files []string, opts VerifyOptions) (*SetReport, error) {
	rep := &SetReport{SignaturesChecked: len(opts.Keys) > 0}
	sv := &setVerifier{opts: opts, rep: rep, removed: retentionClaims(files)}
	var prev *fileEnd
	for i, path := range files {
		var end *fileEnd
		err := sv.firstStart(path, i)
		if err == nil {
			end, err = sv.file(path, prev, i == len(files)-1)
		}
		if err != nil {
			var p *Problem
			if errors.As(err, &p) {
				rep.Problem = p
			}
			return rep, err
		}
		prev = end
	}
	if err := sv.finish(files); err != nil {
		rep.Problem = err.(*Problem)
		return rep, err
	}
	return rep, nil
}

// retentionClaims reads the start record of each file for the files it says retention removed,
// so that the first file's missing predecessor is judged when that file is checked; the claims
// themselves are verified with their files.
func retentionClaims(files []string) map[string]string {
	removed := map[string]string{}
	for _, path := range files {
		if c := startRecord(path); c != nil {
			for _, n := range c.Removed {
				removed[n] = path
			}
		}
	}
	return removed
}

// startRecord is the checkpoint object of the file's first record when that is a start record.
func startRecord(path string) *ChainCheckpoint {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4<<10), maxRecord)
	var r ownRecord
	if sc.Scan() && json.Unmarshal(sc.Bytes(), &r) == nil && r.Op == OpLogStart && r.C != nil {
		return r.C
	}
	return nil
}

type setVerifier struct {
	opts    VerifyOptions
	rep     *SetReport
	removed map[string]string // file removed by retention -> the file whose start record says so
}

// ownRecord is the part of the log's own records that verification reads.
type ownRecord struct {
	Time string           `json:"time"`
	Op   string           `json:"operationName"`
	C    *ChainCheckpoint `json:"auditCheckpoint"`
}

// file verifies one file of the set, given where its predecessor ended (nil for the first).
func (sv *setVerifier) file(path string, prev *fileEnd, last bool) (*fileEnd, error) {
	name := filepath.Base(path)
	fr := FileReport{File: path}
	problem := func(rec int, off int64, format string, args ...any) error {
		return &Problem{File: path, Record: rec, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	var ck *Checkpoint
	if _, err := os.Stat(checkpointPath(path)); err == nil {
		if ck, err = loadCheckpoint(checkpointPath(path)); err != nil {
			return nil, problem(0, 0, "%v", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening audit file: %w", err)
	}
	defer f.Close()
	w := walker{mark: -1}
	if ck != nil {
		w.mark = ck.Offset
	}
	w.special = func(line []byte) error { return sv.own(&w, &fr, prev, line) }
	err = w.walk(f)
	fr.Records, fr.Bytes = w.st.Records, w.st.Offset
	sv.rep.Files = append(sv.rep.Files, fr)
	if err != nil {
		var re *RecordError
		if !errors.As(err, &re) {
			return nil, problem(0, 0, "%v", err)
		}
		if prev != nil && re.Record == 1 && w.start == nil {
			return nil, problem(1, 0, "does not start with the record linking it to %s: %v", prev.name, re.Err)
		}
		if strings.HasPrefix(re.Err.Error(), "chain broken") && re.Record > 1 {
			return nil, problem(re.Record, re.Offset, "%v: record %d was changed, or records were removed, added or moved before this one", re.Err, re.Record-1)
		}
		return nil, problem(re.Record, re.Offset, "%v", re.Err)
	}
	if prev != nil && fr.StartsAfter == "" && w.st.Records > 0 {
		return nil, problem(1, 0, "does not start with the record linking it to %s", prev.name)
	}
	sv.rep.Records += w.st.Records
	sv.rep.LastHash = w.st.hash()
	end := &fileEnd{name: name, records: w.st.Records, last: w.st.hash(), seq: fr.Seq,
		endsInCkpt: bytes.Contains(w.last, []byte(`"operationName":"`+OpCheckpoint+`"`))}
	if !last && !end.endsInCkpt {
		return nil, problem(0, 0, "ends at record %d without the final checkpoint record of a rotation: records were removed from its end", w.st.Records)
	}
	if ck != nil {
		if err := sv.checkpointFile(ck, w.marked, &fr); err != nil {
			return nil, problem(0, 0, "checkpoint file %s: %v", checkpointPath(path), err)
		}
		sv.rep.Files[len(sv.rep.Files)-1] = fr
	}
	return end, nil
}

// own checks one of the log's own records against the chain before it (w.st) and, for a start
// record, against the predecessor.
func (sv *setVerifier) own(w *walker, fr *FileReport, prev *fileEnd, line []byte) error {
	var r ownRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	c := r.C
	if c == nil {
		return nil
	}
	switch r.Op {
	case OpLogStart:
		if w.st.Records != 0 {
			return errors.New("a rotation start record in the middle of a file")
		}
		if err := sv.start(c, fr, prev); err != nil {
			return err
		}
	case OpCheckpoint:
		if c.Records != int64(w.st.Records) || c.Hash != w.st.hash() {
			return fmt.Errorf("checkpoint says %d records ending in %s before it, the chain has %d ending in %s: records were removed, added or reordered",
				c.Records, c.Hash, w.st.Records, w.st.hash())
		}
		if c.Seq != fr.Seq {
			return fmt.Errorf("checkpoint names file sequence %d, the file is %d", c.Seq, fr.Seq)
		}
	default:
		return fmt.Errorf("an %q record carries a checkpoint", r.Op)
	}
	fr.Checkpoints++
	ok, err := sv.signature(c, r.Op, r.Time)
	if err != nil {
		return err
	}
	if ok {
		fr.Signed++
		fr.LastSigned = w.st.Records + 1
		sv.rep.Signed++
	}
	return nil
}

// start checks a file's start record against the file before it in the set.
func (sv *setVerifier) start(c *ChainCheckpoint, fr *FileReport, prev *fileEnd) error {
	fr.StartsAfter, fr.Seq = c.Predecessor, c.Seq
	if prev == nil {
		return nil
	}
	switch {
	case c.Predecessor != prev.name:
		return fmt.Errorf("links to %s, but the file before it is %s: a file is missing or out of order", c.Predecessor, prev.name)
	case c.Hash != prev.last || c.Records != int64(prev.records):
		return fmt.Errorf("links to %s at %d records ending in %s, but that file has %d records ending in %s: records were removed from or added to its end",
			prev.name, c.Records, c.Hash, prev.records, prev.last)
	case c.Seq != prev.seq+1:
		return fmt.Errorf("file sequence %d follows %d", c.Seq, prev.seq)
	}
	return nil
}

// signature checks c's signature under the pinned keys: ok when valid, an error when it names
// a key that is not pinned or does not verify; unsigned records are neither.
func (sv *setVerifier) signature(c *ChainCheckpoint, op, at string) (bool, error) {
	if len(sv.opts.Keys) == 0 || c.Sig == "" {
		return false, nil
	}
	key := findKey(sv.opts.Keys, c.KeyID)
	if key == nil {
		return false, fmt.Errorf("signed with key %s, which is not a pinned key: the chain was rewritten or the key file is not this log's", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(key, c.signedMessage(op, at), sig) {
		return false, fmt.Errorf("the signature under key %s does not verify: the record or the chain before it was changed", c.KeyID)
	}
	return true, nil
}

func findKey(keys []ed25519.PublicKey, id string) ed25519.PublicKey {
	for _, k := range keys {
		if KeyID(k) == id {
			return k
		}
	}
	return nil
}

// checkpointFile checks a file's checkpoint file against the chain at its offset, and its
// signature when it has one and keys are pinned.
func (sv *setVerifier) checkpointFile(ck *Checkpoint, at *chainState, fr *FileReport) error {
	if at == nil {
		return fmt.Errorf("it records %d records up to offset %d, but the file ends before: records were cut off its end", ck.Records, ck.Offset)
	}
	if err := checkMark(ck, at); err != nil {
		return err
	}
	fr.CheckpointFile = ck
	if len(sv.opts.Keys) == 0 || ck.Sig == "" {
		if len(sv.opts.Keys) > 0 {
			sv.note("the checkpoint file %s is not signed (written while sealed)", checkpointPath(fr.File))
		}
		return nil
	}
	key := findKey(sv.opts.Keys, ck.KeyID)
	sig, err := base64.StdEncoding.DecodeString(ck.Sig)
	if key == nil || err != nil || !ed25519.Verify(key, ck.signedMessage(), sig) {
		return fmt.Errorf("its signature (key %s) does not verify under the pinned keys", ck.KeyID)
	}
	return nil
}

func (sv *setVerifier) note(format string, args ...any) {
	sv.rep.Notes = append(sv.rep.Notes, fmt.Sprintf(format, args...))
}

// firstStart judges, before the first file (i == 0) is walked, where it starts: at the log's
// beginning, after a file retention removed, or (Partial) after a file not given. Its start
// record is verified with the file.
func (sv *setVerifier) firstStart(path string, i int) error {
	if i != 0 {
		return nil
	}
	c := startRecord(path)
	if c == nil {
		return nil
	}
	p := c.Predecessor
	by, ok := sv.removed[p]
	switch {
	case !ok && sv.opts.Partial:
		sv.note("%s continues %s, which was not given: the history before it is not checked", filepath.Base(path), p)
	case !ok:
		return &Problem{File: path, Record: 1, Reason: fmt.Sprintf(
			"continues %s, which is missing and no start record in the set says retention removed it: files before it may have been deleted", p)}
	default:
		sv.note("%s continues %s, removed by retention (recorded in %s)", filepath.Base(path), p, filepath.Base(by))
	}
	return nil
}

// finish checks what only the whole set shows, whether any signature covers it, and notes what
// it cannot prove.
func (sv *setVerifier) finish(files []string) error {
	rep := sv.rep
	last := 0 // records after the last valid signature
	for _, fr := range rep.Files {
		if fr.LastSigned > 0 {
			last = 0
		}
		last += fr.Records - fr.LastSigned
	}
	rep.UnsignedTail = last
	switch {
	case !rep.SignaturesChecked:
		sv.note("signatures were not checked (no public key): a rewrite of the whole chain would not be detected")
	case rep.Records > 0 && rep.Signed == 0:
		return &Problem{File: files[len(files)-1], Reason: "no checkpoint in the set is validly signed under the pinned keys: the chain may have been rewritten"}
	case last > 0:
		sv.note("the last %d records are chained but not covered by a signed checkpoint: their removal or rewriting is detected only against the checkpoint file", last)
	}
	return nil
}
