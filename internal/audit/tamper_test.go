package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// setOptions rotate every ~14 records and checkpoint every 5.
var setOptions = audit.Options{MaxFileBytes: 4096, CheckpointRecords: 5}

// writeSet writes n records to a signed log in dir and closes it; it returns the files in order.
func writeSet(t *testing.T, dir string, n int, o audit.Options, key ed25519.PrivateKey) []string {
	t.Helper()
	l, err := audit.Open(filepath.Join(dir, "audit.log"), o)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if err := l.SetSigner(key); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		rec := audit.Record{OperationName: "SecretGet", Category: "AuditEvent", ResultType: "Success",
			RequestID: "req-" + strconv.Itoa(i), CallerIPAddress: "10.0.0.1", Properties: audit.Properties{HTTPStatusCode: 200}}
		if err := l.Write(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := audit.FilesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	s := strings.Join(lines, "")
	if !strings.HasSuffix(s, "\n") && s != "" {
		s += "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rewrite re-chains every file of the set after changing each record's caller address, as an
// attacker without the signing key would: checkpoint records are recomputed, and re-signed by
// sign (nil: left unsigned).
func rewrite(t *testing.T, files []string, sign func(c *audit.ChainCheckpoint, op, at string)) {
	t.Helper()
	prev, prevName, prevCount := "", "", 0
	for _, path := range files {
		var out []string
		for i, line := range readLines(t, path) {
			var r audit.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			r.CallerIPAddress = "192.0.2.66"
			if c := r.Checkpoint; c != nil {
				c.Hash, c.Records, c.KeyID, c.Sig = prev, int64(i), "", ""
				if r.OperationName == audit.OpLogStart {
					c.Records, c.Predecessor = int64(prevCount), prevName
				}
				if sign != nil {
					sign(c, r.OperationName, r.Time)
				}
			}
			r.PrevHash = prev
			b, err := json.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			prev = hex.EncodeToString(sum[:])
			out = append(out, string(b)+"\n")
		}
		writeLines(t, path, out)
		prevName, prevCount = filepath.Base(path), len(out)
		os.Remove(audit.CheckpointPath(path)) // or the attacker leaves an obviously stale one
	}
}

// tamperCase changes an intact rotated set; VerifySet must then name file wantFile (its index,
// -1: the last), record wantRecord (0 = the file as a whole) and a reason containing want ("":
// the set verifies).
type tamperCase struct {
	name                 string
	tamper               func(t *testing.T, files []string)
	wantFile, wantRecord int
	want                 string
}

func setTamperCases(pinned ed25519.PublicKey, attacker ed25519.PrivateKey) []tamperCase {
	return []tamperCase{
		{"intact", func(*testing.T, []string) {}, -1, 0, ""},
		{"byte flipped", func(t *testing.T, f []string) {
			l := readLines(t, f[1])
			l[4] = strings.Replace(l[4], "10.0.0.1", "10.0.0.2", 1)
			writeLines(t, f[1], l)
		}, 1, 6, "chain broken"},
		{"record deleted", func(t *testing.T, f []string) {
			l := readLines(t, f[2])
			writeLines(t, f[2], append(l[:3:3], l[4:]...))
		}, 2, 4, "chain broken"},
		{"records swapped", func(t *testing.T, f []string) {
			l := readLines(t, f[0])
			l[2], l[3] = l[3], l[2]
			writeLines(t, f[0], l)
		}, 0, 3, "chain broken"},
		{"rotated file's tail truncated", func(t *testing.T, f []string) {
			writeLines(t, f[1], truncateTail(readLines(t, f[1]), 2))
		}, 1, 0, "without the final checkpoint record"},
		{"rotated file's tail truncated, closed by a forged unsigned checkpoint", func(t *testing.T, f []string) {
			l := readLines(t, f[1])
			fake := l[len(l)-1]
			l = truncateTail(l, 2)
			writeLines(t, f[1], append(l, rechainLast(t, l, fake)))
		}, 2, 1, "records were removed from or added to its end"},
		{"active file's tail truncated", func(t *testing.T, f []string) {
			a := f[len(f)-1]
			l := readLines(t, a)
			writeLines(t, a, l[:max(0, len(l)-2)])
		}, -1, 0, "records were cut off its end"},
		{"rotated file deleted", func(t *testing.T, f []string) { os.Remove(f[1]) }, 2, 1, "a file is missing or out of order"},
		{"oldest file deleted", func(t *testing.T, f []string) { os.Remove(f[0]) }, 1, 1, "no start record in the set says retention removed it"},
		{"rewritten, checkpoints unsigned", func(t *testing.T, f []string) { rewrite(t, f, nil) }, -1, 0, "no checkpoint in the set is validly signed"},
		{"rewritten, signed with another key", func(t *testing.T, f []string) {
			rewrite(t, f, func(c *audit.ChainCheckpoint, op, at string) {
				c.KeyID = audit.KeyID(attacker.Public().(ed25519.PublicKey))
				c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(attacker, c.SignedMessage(op, at)))
			})
		}, 0, 6, "not a pinned key"},
		{"rewritten, claiming the pinned key", func(t *testing.T, f []string) {
			rewrite(t, f, func(c *audit.ChainCheckpoint, op, at string) {
				c.KeyID = audit.KeyID(pinned)
				c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(attacker, c.SignedMessage(op, at)))
			})
		}, 0, 6, "does not verify"},
	}
}

func TestVerifySet_TamperCases(t *testing.T) {
	key := testKey(1)
	pinned := []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	for _, c := range setTamperCases(pinned[0], testKey(2)) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeSet(t, dir, 60, setOptions, key)
			if len(files) < 4 {
				t.Fatalf("want at least 4 files, got %v", files)
			}
			c.tamper(t, files)
			present, _ := audit.FilesIn(dir)
			rep, err := audit.VerifySet(present, audit.VerifyOptions{Keys: pinned})
			if c.want == "" {
				if err != nil || rep.Records < 60 || rep.Signed == 0 || rep.UnsignedTail != 0 {
					t.Fatalf("intact set: %+v, %v", rep, err)
				}
				return
			}
			var p *audit.Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want a *Problem", err)
			}
			wantFile := files[len(files)-1]
			if c.wantFile >= 0 {
				wantFile = files[c.wantFile]
			}
			if p.File != wantFile || p.Record != c.wantRecord || !strings.Contains(p.Reason, c.want) {
				t.Fatalf("problem = %+v\nwant file %s record %d reason containing %q", p, wantFile, c.wantRecord, c.want)
			}
		})
	}
}

// truncateTail drops at least n records from the end, and then checkpoint records, so that the
// file ends in an ordinary record.
func truncateTail(l []string, n int) []string {
	l = l[:len(l)-n]
	for len(l) > 1 && strings.Contains(l[len(l)-1], `"auditCheckpoint"`) {
		l = l[:len(l)-1]
	}
	return l
}

// rechainLast makes the checkpoint record line chain to the end of lines, with matching counts,
// unsigned: a forger's closing checkpoint.
func rechainLast(t *testing.T, lines []string, ckpt string) string {
	t.Helper()
	var r audit.Record
	if err := json.Unmarshal([]byte(ckpt), &r); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSuffix(lines[len(lines)-1], "\n")))
	r.PrevHash = hex.EncodeToString(sum[:])
	r.Checkpoint.Hash, r.Checkpoint.Records, r.Checkpoint.KeyID, r.Checkpoint.Sig = r.PrevHash, int64(len(lines)), "", ""
	b, _ := json.Marshal(&r)
	return string(b) + "\n"
}

// What a signature cannot prove is reported, not passed over: records written while sealed are
// an unsigned tail, and a checkpoint file forged after cutting the tail off fails.
func TestVerifySet_UnsignedTailAndForgedCheckpointFile(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeSet(t, dir, 12, audit.Options{CheckpointRecords: 5}, key)
	l, err := audit.Open(path) // sealed: no key
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		write(l, "SecretGet")
	}
	l.Close()
	rep, err := audit.VerifySet([]string{path}, pinnedKeys(key))
	notes := strings.Join(rep.Notes, "\n")
	if err != nil || rep.UnsignedTail != 3 || !strings.Contains(notes, "not covered by a signed checkpoint") || !strings.Contains(notes, "is not signed") {
		t.Fatalf("unsigned tail: %+v, %v", rep, err)
	}

	// Cut the tail off and sign a matching checkpoint file with another key.
	lines := readLines(t, path)
	writeLines(t, path, lines[:len(lines)-4])
	raw, _ := os.ReadFile(path)
	sum := sha256.Sum256([]byte(strings.TrimSuffix(lines[len(lines)-5], "\n")))
	attacker := testKey(2)
	ck := audit.Checkpoint{Version: 1, File: "audit.log", Offset: int64(len(raw)), Records: int64(len(lines) - 4),
		LastHash: hex.EncodeToString(sum[:]), Time: "2026-12-02T00:00:00.0000000Z", KeyID: audit.KeyID(key.Public().(ed25519.PublicKey))}
	ck.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(attacker, ck.SignedMessage()))
	b, _ := json.Marshal(&ck)
	os.WriteFile(audit.CheckpointPath(path), append(b, '\n'), 0o600)
	_, err = audit.VerifySet([]string{path}, pinnedKeys(key))
	if err == nil || !strings.Contains(err.Error(), "does not verify under the pinned keys") {
		t.Fatalf("forged checkpoint file: err = %v", err)
	}
}

// A new signing key (the keyring's oldest term retired) is added to the public key file; the
// set verifies under both keys, not under the old one alone.
func TestVerifySet_KeyChange(t *testing.T) {
	dir := t.TempDir()
	old, next := testKey(1), testKey(5)
	writeSet(t, dir, 12, audit.Options{CheckpointRecords: 5}, old)
	writeSet(t, dir, 12, audit.Options{CheckpointRecords: 5}, next)
	raw, err := os.ReadFile(filepath.Join(dir, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.ParsePublicKeys(raw)
	if err != nil || len(keys) != 2 {
		t.Fatalf("public key file holds %d keys, %v", len(keys), err)
	}
	files, _ := audit.FilesIn(dir)
	if _, err := audit.VerifySet(files, audit.VerifyOptions{Keys: keys}); err != nil {
		t.Fatalf("both keys: %v", err)
	}
	if _, err := audit.VerifySet(files, pinnedKeys(old)); err == nil || !strings.Contains(err.Error(), "not a pinned key") {
		t.Fatalf("old key alone: err = %v", err)
	}
}
