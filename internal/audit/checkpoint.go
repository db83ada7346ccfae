package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// checkpointVersion is the version of the checkpoint format this build writes and reads.
const checkpointVersion = 1

// Checkpoint is the durable summary of an audit log's chain that lets Open resume without
// re-hashing the history: the file it covers, where the last covered record ends, how many
// records there are up to there, and that record's hash. It is written next to the log as
// <log>.checkpoint, atomically (temporary file, fsync, rename, directory fsync), and only for
// records already fsynced to the log, so that after a crash it never claims more than the file
// holds. The last hash commits to every record before it (each carries its predecessor's hash),
// so it also identifies the file's content: a checkpoint matches one history only.
type Checkpoint struct {
	Version  int    `json:"v"`
	File     string `json:"file"`     // base name of the log file
	Offset   int64  `json:"offset"`   // end of the last covered record, after its newline
	Records  int64  `json:"records"`  // records in the file up to Offset
	LastHash string `json:"lastHash"` // hex SHA-256 of the record ending at Offset; "" at offset 0
	Time     string `json:"time"`     // when it was written (signed when Sig is set)
	// Seq is the file's place in the rotated set (0 for the first file); KeyID and Sig sign the
	// checkpoint with the log's checkpoint key when one was set (signedMessage), so that cutting
	// records off the end and rewriting the checkpoint to match is detected too.
	Seq   int64  `json:"seq,omitempty"`
	KeyID string `json:"keyId,omitempty"`
	Sig   string `json:"sig,omitempty"`
}

// signedMessage is what the checkpoint file's signature covers: every field but the signature.
func (c *Checkpoint) signedMessage() []byte {
	return fmt.Appendf(nil, "strongroom-audit-checkpoint-file\x00%d\x00%s\x00%d\x00%d\x00%d\x00%s\x00%s\x00%s",
		c.Version, c.File, c.Seq, c.Offset, c.Records, c.LastHash, c.Time, c.KeyID)
}

func checkpointPath(logPath string) string { return logPath + ".checkpoint" }

// newCheckpoint describes the chain state st of the log at logPath.
func newCheckpoint(logPath string, st chainState) *Checkpoint {
	return &Checkpoint{
		Version: checkpointVersion, File: filepath.Base(logPath), Offset: st.Offset,
		Records: int64(st.Records), LastHash: st.hash(), Time: FormatTime(time.Now()),
	}
}

// state is the chain state the checkpoint records.
func (c *Checkpoint) state() chainState {
	st := chainState{Offset: c.Offset, Records: int(c.Records)}
	st.setHash(c.LastHash)
	return st
}

// validate checks the checkpoint's own consistency (not yet against the log).
func (c *Checkpoint) validate(logPath string) error {
	switch {
	case c.Version != checkpointVersion:
		return fmt.Errorf("version %d, this build reads version %d", c.Version, checkpointVersion)
	case c.File != filepath.Base(logPath):
		return fmt.Errorf("it covers file %q, not %q", c.File, filepath.Base(logPath))
	case c.Offset < 0 || c.Records < 0 || (c.Offset == 0) != (c.Records == 0) || c.Records > c.Offset:
		return fmt.Errorf("inconsistent offset %d and record count %d", c.Offset, c.Records)
	case c.Records == 0 && c.LastHash != "":
		return errors.New("a hash for an empty log")
	case c.Records > 0 && (len(c.LastHash) != 64 || !isHex([]byte(c.LastHash))):
		return errors.New("last hash is not 64 lowercase hex digits")
	}
	return nil
}

// loadCheckpoint reads the checkpoint at path: nil without error when there is none.
func loadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading audit checkpoint: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return nil, fmt.Errorf("reading audit checkpoint %s: %w", path, err)
	}
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("audit checkpoint %s is damaged (not JSON: %v); delete it to have the next open verify the whole log", path, err)
	}
	logPath := path[:len(path)-len(".checkpoint")]
	if err := c.validate(logPath); err != nil {
		return nil, fmt.Errorf("audit checkpoint %s is not usable (%v); delete it to have the next open verify the whole log", path, err)
	}
	return &c, nil
}

// saveCheckpoint durably replaces the checkpoint of the log at logPath with c.
func saveCheckpoint(logPath string, c *Checkpoint) error {
	path := checkpointPath(logPath)
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding audit checkpoint: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	_, err = f.Write(append(raw, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing audit checkpoint %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("writing audit checkpoint %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// How often the running log moves its checkpoint forward, at its once-a-second fsync: after
// checkpointBytes of records, or checkpointEvery when fewer were written. This bounds what Open
// re-reads after a crash to about checkpointBytes plus a second of writes (a clean Close always
// checkpoints the end), for two extra fsyncs per checkpoint. Variables so tests can change them.
var (
	checkpointBytes int64 = 1 << 20
	checkpointEvery       = 10 * time.Second
)

// maybeCheckpoint moves the checkpoint to st (records known to be fsynced) when it is due. A
// failed checkpoint write does not fail the sink (the records are in the log; the next open only
// reads more), but it is kept for Close to report. Call with ckptMu held.
func (l *Log) maybeCheckpoint(f *os.File, st chainState) {
	grown := st.Offset - l.ckpt.Offset
	if grown <= 0 || (grown < l.ckptBytes && time.Since(l.ckptAt) < l.ckptEvery) {
		return
	}
	if err := l.checkpoint(f, st); err != nil {
		l.ckptErr = err
	}
}

// checkpoint durably records st as the log's checkpoint, unless the log's file f holds less than
// st (a swapped file): then the old checkpoint stays. Call with ckptMu held (or before the log runs).
func (l *Log) checkpoint(f *os.File, st chainState) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	if fi.Size() < st.Offset {
		return fmt.Errorf("writing audit checkpoint: %s is %d bytes, less than the %d written", l.path, fi.Size(), st.Offset)
	}
	c := newCheckpoint(l.path, st)
	l.mu.Lock()
	c.Seq = l.seq
	s := l.signer
	l.mu.Unlock()
	if s != nil {
		c.KeyID = s.id
		c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c.signedMessage()))
	}
	if err := saveCheckpoint(l.path, c); err != nil {
		return err
	}
	l.ckpt, l.ckptAt, l.ckptErr = st, time.Now(), nil
	return nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
