package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// FormatVersion is the version of the audit log format: version 1 is the hash chain alone;
// version 2 adds signed checkpoint records, rotation links and retention records (all records
// carrying an "auditCheckpoint" object, see ChainCheckpoint). A version-1 log is a valid
// version-2 log without checkpoints.
const FormatVersion = 2

// Operation names of the records the log writes itself.
const (
	// OpCheckpoint signs the chain up to the record before it: every N records, every T seconds
	// when records were written since, at a clean close and as the last record of a rotated file.
	OpCheckpoint = "AuditCheckpoint"
	// OpLogStart is the first record of a file that continues a rotated one: its prevHash is the
	// predecessor's last hash, and it names the predecessor and its record count (and any file
	// retention is about to delete). It is signed too when a key is set.
	OpLogStart = "AuditLogStart"
)

// PublicKeyFile is where SetSigner keeps the signing keys' public halves (PEM "PUBLIC KEY"
// blocks, PKIX), next to the log: copy it somewhere the log's writers cannot reach and pass it to
// `strongroom audit verify --public-key`.
const PublicKeyFile = "audit-signing.pub"

// ChainCheckpoint is the "auditCheckpoint" object of the log's own records (OpCheckpoint,
// OpLogStart). Seq numbers the log's files (0 for the first, +1 per rotation); Records and Hash
// describe the chain before this record: in a checkpoint, the records of this file before it and
// the hash of the last one (its prevHash); in a start record, the predecessor's record count and
// last hash. Sig is the Ed25519 signature of signedMessage under the key KeyID names.
type ChainCheckpoint struct {
	Version     int      `json:"v"`
	Seq         int64    `json:"seq"`
	Records     int64    `json:"records"`
	Hash        string   `json:"hash"`
	Predecessor string   `json:"predecessor,omitempty"`
	Removed     []string `json:"removed,omitempty"`
	KeyID       string   `json:"keyId,omitempty"`
	Sig         string   `json:"sig,omitempty"`
}

// signedMessage is what a checkpoint's signature covers: the format version, the record's
// operation and time, and every field but the signature, length-delimited by NULs (no field can
// hold one).
func (c *ChainCheckpoint) signedMessage(op, at string) []byte {
	m := make([]byte, 0, 256)
	m = append(m, "strongroom-audit-checkpoint\x00"...)
	m = strconv.AppendInt(m, int64(c.Version), 10)
	for _, s := range []string{op, at, strconv.FormatInt(c.Seq, 10), strconv.FormatInt(c.Records, 10), c.Hash, c.Predecessor, c.KeyID} {
		m = append(append(m, 0), s...)
	}
	for _, s := range c.Removed {
		m = append(append(m, 0), s...)
	}
	return m
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// TokenDigest is how a record names a token: HMAC-SHA256 under the deployment's token digest key
// (keyring.TokenDigestKey), in hex. Whoever holds the token can compute it and search for it;
// the record reveals nothing of the token.
func TokenDigest(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// signer is the key checkpoints are signed with; nil while sealed.
type signer struct {
	key ed25519.PrivateKey
	id  string
}

// SetSigner sets the key that signs checkpoints from now on (nil: none, while sealed) and adds
// its public half to PublicKeyFile next to the log. Records written while no key was set are
// covered by a checkpoint signed at once. The error is about the public key file only: signing
// starts in any case.
func (l *Log) SetSigner(key ed25519.PrivateKey) error {
	_, err := l.Sign(key)
	return err
}

// Sign is SetSigner returning a release that clears the key again, unless another Sign or
// SetSigner replaced it since (a serving state built before the one it replaces closes keeps its
// key). Release first signs what is not covered yet, a checkpoint record and the checkpoint
// file, so a seal or a shutdown leaves the log's end signed.
func (l *Log) Sign(key ed25519.PrivateKey) (release func(), err error) {
	var s *signer
	if key != nil {
		s = &signer{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
	}
	l.mu.Lock()
	l.signer = s
	queued := s != nil && l.sinceSigned > 0 && !l.failed.Load()
	if queued {
		l.appendCheckpointLocked(OpCheckpoint, nil, "")
	}
	l.mu.Unlock()
	if queued {
		l.kick()
	}
	release = func() {
		if s != nil {
			l.signEnd(s)
		}
		l.mu.Lock()
		if l.signer == s {
			l.signer = nil
		}
		l.mu.Unlock()
	}
	if s == nil {
		return release, nil
	}
	return release, addPublicKey(filepath.Join(filepath.Dir(l.path), PublicKeyFile), key.Public().(ed25519.PublicKey))
}

// signEnd writes a checkpoint record signed by s when records are not covered yet, waits for it
// (bounded by the write deadline), fsyncs the file and writes a signed checkpoint file for it.
func (l *Log) signEnd(s *signer) {
	l.mu.Lock()
	if l.signer != s || l.failed.Load() {
		l.mu.Unlock()
		return
	}
	var b *batch
	if l.sinceSigned > 0 {
		l.appendCheckpointLocked(OpCheckpoint, nil, "")
		b = l.pending
	}
	l.mu.Unlock()
	if b != nil {
		l.kick()
		select {
		case <-b.done:
		case <-time.After(l.deadline):
		}
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	f, st, ok := l.f, l.written, l.signer == s && !l.failed.Load()
	l.mu.Unlock()
	if ok && st.Offset > 0 && f.Sync() == nil {
		if err := l.checkpoint(f, st); err != nil {
			l.ckptErr = err
		}
	}
}

// appendCheckpointLocked chains one of the log's own records (op) into the pending batch: a
// checkpoint of the current file, or with pred set the start record of the next file (which
// moves the log's file sequence and record count on). Call with l.mu held.
func (l *Log) appendCheckpointLocked(op string, removed []string, pred string) {
	c := ChainCheckpoint{Version: FormatVersion, Seq: l.seq, Records: l.chained, Predecessor: pred, Removed: removed}
	if l.hasHash {
		c.Hash = string(l.lastHash[:])
	}
	if pred != "" { // the start record of the next file, whose count starts at zero
		l.seq++
		c.Seq, l.chained = l.seq, 0
	}
	rec := &Record{Time: FormatTime(time.Now()), OperationName: op, Category: "AuditEvent", ResultType: "Success",
		ResultSignature: "OK", RequestID: uuid.NewString(), Properties: Properties{HTTPStatusCode: 200}, Checkpoint: &c}
	if s := l.signer; s != nil {
		c.KeyID = s.id
		c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c.signedMessage(op, rec.Time)))
	}
	l.chainLocked(rec.appendJSON(nil))
	l.sinceCkpt, l.lastCkptRec = 0, time.Now()
	if l.signer != nil {
		l.sinceSigned = 0
	}
}

// kick wakes the writer for a batch nobody waits on.
func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// addPublicKey appends pub to the PEM file at path unless it is already there.
func addPublicKey(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encoding the audit signing key: %w", err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if bytes.Contains(old, block) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(old, block...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// ParsePublicKeys reads Ed25519 public keys from PEM "PUBLIC KEY" blocks (PublicKeyFile's form)
// or from lines of 64 hex digits.
func ParsePublicKeys(raw []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	rest := raw
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing a public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a public key is %T, not Ed25519", k)
		}
		keys = append(keys, ek)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	for _, line := range bytes.Fields(raw) {
		b, err := hex.DecodeString(string(line))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, errors.New("not PEM public keys nor 64-digit hex Ed25519 keys")
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key found")
	}
	return keys, nil
}
