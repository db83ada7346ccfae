package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
)

// writeN appends n identical records from 8 goroutines (so they batch as under load).
func writeN(t testing.TB, l *audit.Log, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := write(l, "SecretGet"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// newLog writes n records to a new log in dir through a real Log, closed cleanly.
func newLog(t testing.TB, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readCheckpoint(t *testing.T, path string) audit.Checkpoint {
	t.Helper()
	raw, err := os.ReadFile(audit.CheckpointPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var c audit.Checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Opening a cleanly closed log reads the same few bytes whatever its size: the last record, to
// check the checkpoint against the file, and nothing else.
func TestOpen_ReadsBoundedBytes(t *testing.T) {
	read := map[int]int64{}
	for _, n := range []int{200, 20000} {
		path := newLog(t, t.TempDir(), n)
		l, err := audit.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		read[n] = l.OpenBytesRead()
		if err := write(l, "SecretSet"); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if res, err := audit.Verify(path); err != nil || res.Records != n+1 {
			t.Fatalf("after reopening a log of %d: Verify = %+v, %v", n, res, err)
		}
		if c := readCheckpoint(t, path); c.Records != int64(n+1) || c.Offset != fileSize(t, path) {
			t.Fatalf("checkpoint after a clean close = %+v, want %d records up to the file's end", c, n+1)
		}
	}
	if read[200] != read[20000] || read[200] > 4<<10 || read[200] == 0 {
		t.Fatalf("Open read %d bytes of a 200-record log and %d of a 20,000-record one; want the same few KiB", read[200], read[20000])
	}
}

// Without a checkpoint (a log from before checkpoints, or a deleted one) Open reads the whole
// log once and writes one; the next open is bounded again.
func TestOpen_WithoutCheckpointReadsAllOnce(t *testing.T) {
	path := newLog(t, t.TempDir(), 500)
	if err := os.Remove(audit.CheckpointPath(path)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{fileSize(t, path), 4 << 10} {
		l, err := audit.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.OpenBytesRead(); got != want {
			t.Fatalf("open %d read %d bytes, want %d", i+1, got, want)
		}
		l.Close()
	}
	if c := readCheckpoint(t, path); c.Records != 500 || c.Offset != fileSize(t, path) {
		t.Fatalf("checkpoint written at open = %+v, want 500 records up to the end", c)
	}
}

// crashCopy copies a live log as a crash would leave it: every record written so far, and the
// checkpoint as it was (copied first: it is never ahead of the log).
func crashCopy(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	for _, p := range []string{audit.CheckpointPath(path), path} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+strings.TrimPrefix(p, path), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A crash after records were appended but before the checkpoint moved: Open re-reads only the
// records after the checkpoint, chains to the last of them and moves the checkpoint to the end.
func TestOpen_CrashBetweenAppendAndCheckpoint(t *testing.T) {
	audit.SetCheckpointPolicy(t, 1<<40, time.Hour) // only open and close checkpoint
	path := newLog(t, t.TempDir(), 100)
	ckOffset := fileSize(t, path)
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeN(t, l, 50)
	crashed := crashCopy(t, path)
	if c := readCheckpoint(t, crashed); c.Offset != ckOffset || c.Records != 100 {
		t.Fatalf("checkpoint before the crash = %+v, want 100 records at offset %d", c, ckOffset)
	}
	size := fileSize(t, crashed)
	l2, err := audit.Open(crashed)
	if err != nil {
		t.Fatalf("open after a crash: %v", err)
	}
	if got, want := l2.OpenBytesRead(), 4<<10+size-ckOffset; got != want {
		t.Fatalf("open after a crash read %d bytes, want %d (the checkpointed record's 4 KiB and the %d-byte tail)", got, want, size-ckOffset)
	}
	if c := readCheckpoint(t, crashed); c.Offset != size || c.Records != 150 {
		t.Fatalf("checkpoint after reopening = %+v, want 150 records at offset %d", c, size)
	}
	if err := write(l2, "SecretSet"); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if res, err := audit.Verify(crashed); err != nil || res.Records != 151 {
		t.Fatalf("Verify after crash and reopen = %+v, %v; want 151 records", res, err)
	}
}

// tamper is one change to a cleanly closed 20-record log (or its checkpoint) that Open must
// refuse, with the error naming the file and the offset.
type tamper struct {
	name   string
	change func(t *testing.T, path string, lines []string)
	want   []string // substrings of the error; "OFF" is the checkpoint's offset
}

func tamperCases() []tamper {
	rewrite := func(t *testing.T, path string, lines []string) {
		if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	appendRaw := func(t *testing.T, path, s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	return []tamper{
		{"truncated tail", func(t *testing.T, p string, ls []string) { rewrite(t, p, ls[:len(ls)-1]) },
			[]string{"shorter than the checkpoint's offset OFF", "cut off"}},
		{"cut-off partial last line", func(t *testing.T, p string, ls []string) {
			rewrite(t, p, append(ls[:len(ls)-1:len(ls)-1], ls[len(ls)-1][:40]))
		}, []string{"shorter than the checkpoint's offset OFF"}},
		{"edited last record", func(t *testing.T, p string, ls []string) {
			rewrite(t, p, replace(ls, len(ls)-1, strings.Replace(ls[len(ls)-1], "SecretGet", "SecretSet", 1)))
		}, []string{"the record ending at offset OFF hashes to", "changed"}},
		{"checkpoint of another log", func(t *testing.T, p string, _ []string) {
			other := filepath.Join(t.TempDir(), "audit.log") // same size, other records
			l, err := audit.Open(other)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				write(l, "SecretSet")
			}
			l.Close()
			raw, _ := os.ReadFile(audit.CheckpointPath(other))
			os.WriteFile(audit.CheckpointPath(p), raw, 0o600)
		}, []string{"does not match its checkpoint", "hashes to"}},
		{"checkpoint not at a record's end", func(t *testing.T, p string, _ []string) {
			editCheckpoint(t, p, func(c *audit.Checkpoint) { c.Offset -= 5 })
		}, []string{"is not the end of a record"}},
		{"damaged checkpoint", func(t *testing.T, p string, _ []string) {
			os.WriteFile(audit.CheckpointPath(p), []byte(`{"v":1,"file":"audit.lo`), 0o600)
		}, []string{"damaged", "delete it"}},
		{"log deleted", func(t *testing.T, p string, _ []string) { os.Remove(p) },
			[]string{"is missing", "20 records up to offset OFF"}},
		{"partial record after the checkpoint", func(t *testing.T, p string, ls []string) {
			appendRaw(t, p, ls[0][:50])
		}, []string{"record 21 at offset OFF", "incomplete"}},
		{"forged record after the checkpoint", func(t *testing.T, p string, ls []string) {
			appendRaw(t, p, ls[3])
		}, []string{"record 21 at offset OFF", "chain broken"}},
	}
}

func editCheckpoint(t *testing.T, path string, edit func(*audit.Checkpoint)) {
	t.Helper()
	c := readCheckpoint(t, path)
	edit(&c)
	raw, _ := json.Marshal(c)
	if err := os.WriteFile(audit.CheckpointPath(path), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesTamperedTail(t *testing.T) {
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := newLog(t, t.TempDir(), 20)
			off := strconv.FormatInt(fileSize(t, path), 10)
			raw, _ := os.ReadFile(path)
			lines := strings.SplitAfter(string(raw), "\n") // each with its newline
			tc.change(t, path, lines[:len(lines)-1])
			l, err := audit.Open(path)
			if err == nil {
				l.Close()
				t.Fatal("Open accepted the log")
			}
			for _, w := range append(tc.want, path) {
				if w = strings.ReplaceAll(w, "OFF", off); !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A record edited before the checkpoint is not re-hashed at open (that is what makes open
// bounded): Verify and VerifyHistory find it.
func TestVerify_CatchesEditBeforeCheckpoint(t *testing.T) {
	path := newLog(t, t.TempDir(), 200)
	raw, _ := os.ReadFile(path)
	edited := bytes.Replace(raw, []byte(`"operationName":"SecretGet"`), []byte(`"operationName":"SecretSet"`), 1)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path)
	if err != nil {
		t.Fatalf("Open re-hashed the history: %v", err)
	}
	defer l.Close()
	if !l.Healthy() {
		t.Fatal("sink unhealthy before the history was verified")
	}
	if _, err := l.VerifyHistory(context.Background()); err == nil || !strings.Contains(err.Error(), "record 2 at offset") || !strings.Contains(err.Error(), "chain broken") {
		t.Fatalf("VerifyHistory err = %v, want chain broken at record 2", err)
	}
	if l.Healthy() || write(l, "SecretGet") == nil {
		t.Fatal("the sink still takes records after its history failed to verify")
	}
	if _, err := audit.Verify(path); err == nil || !strings.Contains(err.Error(), "record 2 at offset") || !strings.Contains(err.Error(), "chain broken") {
		t.Fatalf("Verify err = %v, want chain broken at record 2", err)
	}
}

// Verify checks the checkpoint too: its count and hash must be the chain's at its offset.
func TestVerify_ChecksCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*audit.Checkpoint)
		want string
	}{
		{"intact", func(*audit.Checkpoint) {}, ""},
		{"wrong count", func(c *audit.Checkpoint) { c.Records-- }, "the checkpoint says 49 records"},
		{"offset inside a record", func(c *audit.Checkpoint) { c.Offset -= 5 }, "is not the end of a record"},
		{"offset past the end", func(c *audit.Checkpoint) { c.Offset += 5 }, "is not the end of a record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := newLog(t, t.TempDir(), 50)
			editCheckpoint(t, path, tc.edit)
			res, err := audit.Verify(path)
			if tc.want == "" {
				if err != nil || res.Records != 50 || res.Checkpoint == nil || res.Checkpoint.Records != 50 {
					t.Fatalf("Verify = %+v, %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify err = %v, want %q", err, tc.want)
			}
		})
	}
}

// The running log moves its checkpoint at its fsync once enough was written, and not before.
func TestLog_PeriodicCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bytes     int64
		every     time.Duration
		wantMoved bool
	}{
		{"below the thresholds", 1 << 40, time.Hour, false},
		{"after enough bytes", 1, time.Hour, true},
		{"after enough time", 1 << 40, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audit.SetCheckpointPolicy(t, tc.bytes, tc.every)
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := audit.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			writeN(t, l, 30)
			l.SyncNow()
			c := readCheckpoint(t, path)
			if moved := c.Records == 30 && c.Offset == fileSize(t, path); moved != tc.wantMoved {
				t.Fatalf("checkpoint after the fsync = %+v (file %d bytes), moved = %v, want %v", c, fileSize(t, path), moved, tc.wantMoved)
			}
		})
	}
}

// chainLines lays out records by hand: each format's %s is given the hash of the line before;
// `\u00%s` spells the hash's first digit as a JSON escape, as another encoder might.
func chainLines(formats ...string) string {
	var b strings.Builder
	prev := ""
	for _, f := range formats {
		line := strings.Replace(f, "%s", prev, 1)
		if strings.Contains(f, `\u00%s`) {
			line = strings.Replace(f, `\u00%s`, `\u00`+strconv.FormatInt(int64(prev[0]), 16)+prev[1:], 1)
		}
		b.WriteString(line + "\n")
		sum := sha256.Sum256([]byte(line))
		prev = hex.EncodeToString(sum[:])
	}
	return b.String()
}

// Verify accepts what encoding/json reads as a chained record, in the writer's layout or not, and
// refuses a last record that is not JSON (no successor vouches for it).
func TestVerify_RecordLayouts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string // "" = verifies
	}{
		{"writer layout", []string{`{"a":1,"prevHash":"%s"}`, `{"a":2,"prevHash":"%s"}`}, ""},
		{"prevHash not last", []string{`{"a":1,"prevHash":"%s"}`, `{"prevHash":"%s","a":2}`, `{"a":3,"prevHash":"%s"}`}, ""},
		{"escaped prevHash", []string{`{"a":1,"prevHash":"%s"}`, `{"a":2,"prevHash":"\u00%s"}`, `{"a":3,"prevHash":"%s"}`}, ""},
		{"last record not JSON", []string{`{"a":1,"prevHash":"%s"}`, `{"a":,"prevHash":"%s"}`}, "record 2 at offset 22: not JSON"},
		{"no prevHash", []string{`{"a":1,"prevHash":"%s"}`, `{"a":2}`}, "record 2 at offset 22: not a record"},
		{"not JSON, not the layout", []string{`{"a":1,"prevHash":"%s"}`, `garbage`, `{"a":3,"prevHash":"%s"}`}, "record 2 at offset 22: not JSON"},
		{"other hash", []string{`{"a":1,"prevHash":"%s"}`, `{"a":2,"prevHash":"` + strings.Repeat("0", 64) + `"}`}, "record 2 at offset 22: chain broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, []byte(chainLines(tc.lines...)), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := audit.Verify(path)
			l, oerr := audit.Open(path) // no checkpoint yet: Open reads it all the same way
			if oerr == nil {
				l.Close()
			}
			if tc.want == "" {
				if err != nil || oerr != nil || res.Records != len(tc.lines) {
					t.Fatalf("Verify = %+v, %v; Open: %v", res, err, oerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || oerr == nil || !strings.Contains(oerr.Error(), tc.want) {
				t.Fatalf("Verify err = %v, Open err = %v; want %q", err, oerr, tc.want)
			}
		})
	}
}

// VerifyHistory re-hashes exactly what Open skipped: after a resume from a checkpoint, the
// records before it; a cancelled run reports the cancellation and leaves the sink alone.
func TestLog_VerifyHistory(t *testing.T) {
	audit.SetCheckpointPolicy(t, 1<<40, time.Hour)
	path := newLog(t, t.TempDir(), 300)
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeN(t, l, 10) // after the checkpoint Open resumed from: not history
	res, err := l.VerifyHistory(context.Background())
	if err != nil || res.Records != 300 || res.LastHash != readCheckpoint(t, path).LastHash || !l.Healthy() {
		t.Fatalf("VerifyHistory = %+v, %v; healthy %v; want the 300 records before the checkpoint", res, err, l.Healthy())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.VerifyHistory(ctx); !errors.Is(err, context.Canceled) || !l.Healthy() {
		t.Fatalf("cancelled VerifyHistory: err %v, healthy %v; want context.Canceled and a healthy sink", err, l.Healthy())
	}
}
