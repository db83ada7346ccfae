package audit

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitHealthy waits for the log to resume.
func waitHealthy(t *testing.T, l *Log, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !l.Healthy() {
		if time.Now().After(deadline) {
			t.Fatalf("the log did not resume within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeOp(l *Log, op string) error {
	return l.Write(context.Background(), &Record{OperationName: op, Category: "AuditEvent", ResultType: "Success"})
}

// TestResume_AfterDiskFull: writes to a full disk fail the log, which refuses everything; once the
// disk takes writes again the log resumes by itself, and the file's chain verifies across the gap.
func TestResume_AfterDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOp(l, "Before"); err != nil {
		t.Fatal(err)
	}
	full := OpenDevFull(t)
	good := l.SwapFile(full, 5*time.Second)
	if err := writeOp(l, "Lost"); err == nil {
		t.Fatal("a write to a full disk succeeded")
	}
	if l.Healthy() || writeOp(l, "Refused") == nil {
		t.Fatal("the log took writes after a failure")
	}
	time.Sleep(2 * resumeEvery) // a full disk does not resume
	if l.Healthy() {
		t.Fatal("the log resumed while its disk was still full")
	}
	l.SwapFile(good, 5*time.Second)
	full.Close()
	waitHealthy(t, l, 3*resumeEvery)
	if err := writeOp(l, "After"); err != nil {
		t.Fatalf("write after resuming: %v", err)
	}
	l.Close()
	res, err := Verify(path)
	if err != nil {
		t.Fatalf("the chain does not verify across the failure: %v", err)
	}
	ops := opsIn(t, path)
	if !bytes.Contains(ops, []byte("Before,"+OpResumed+",After")) || bytes.Contains(ops, []byte("Lost")) {
		t.Fatalf("records %s (verified %d)", ops, res.Records)
	}
}

// TestResume_AfterHungWrite: a write that hangs fails the log after the deadline; when the disk
// finally completes it, the log resumes, keeping that write, and the chain verifies.
func TestResume_AfterHungWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOp(l, "Before"); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fillPipe(t, w)
	good := l.SwapFile(w, 300*time.Millisecond)
	start := time.Now()
	if err := writeOp(l, "Hung"); err == nil {
		t.Fatal("a hung write succeeded")
	}
	if took := time.Since(start); took > time.Second+300*time.Millisecond {
		t.Fatalf("a hung write held its caller %v, more than the deadline plus 1 s", took)
	}
	// The disk comes back: the hung write lands (here: what reached the pipe goes to the file).
	drained := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); drained <- b }()
	time.Sleep(100 * time.Millisecond)
	l.SwapFile(good, 5*time.Second)
	w.Close()
	landed := bytes.TrimLeft(<-drained, "\x00")
	if _, err := good.Write(landed); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, l, 3*resumeEvery)
	if err := writeOp(l, "After"); err != nil {
		t.Fatalf("write after resuming: %v", err)
	}
	l.Close()
	if _, err := Verify(path); err != nil {
		t.Fatalf("the chain does not verify across the hang: %v", err)
	}
	if ops := opsIn(t, path); !bytes.Contains(ops, []byte("Before,Hung,"+OpResumed+",After")) {
		t.Fatalf("records %s", ops)
	}
}

// opsIn lists the operation names in the log, comma-separated.
func opsIn(t *testing.T, path string) []byte {
	t.Helper()
	var out []byte
	for _, r := range logRecords(t, path) {
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, r.OperationName...)
	}
	return out
}
