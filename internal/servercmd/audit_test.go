package servercmd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

// auditSet writes a signed, rotated audit folder under dataDir/audit and returns the folder.
func auditSet(t *testing.T, dataDir string, key ed25519.PrivateKey) string {
	t.Helper()
	dir := filepath.Join(dataDir, "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{MaxFileBytes: 4096, CheckpointRecords: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetSigner(key); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := l.Record(context.Background(), audit.Event{Operation: "SecretGet", Status: 200, RequestID: "r" + strconv.Itoa(i),
			CallerIP: "10.0.0.1", URI: "https://kv.vault.localhost/secrets/s?api-version=7.4"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runVerify(args ...string) (string, error) {
	cmd := NewAuditCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append([]string{"verify"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func pemKey(t *testing.T, path string, pub ed25519.PublicKey) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerify_CLI(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	dataDir := t.TempDir()
	dir := auditSet(t, dataDir, key)
	pinned := filepath.Join(t.TempDir(), "pinned.pub")
	pemKey(t, pinned, key.Public().(ed25519.PublicKey))
	wrong := filepath.Join(t.TempDir(), "wrong.pub")
	pemKey(t, wrong, other.Public().(ed25519.PublicKey))
	files, _ := audit.FilesIn(dir)
	if len(files) < 3 {
		t.Fatalf("want a rotated set, got %v", files)
	}

	out, err := runVerify("--data-dir", dataDir, "--public-key", pinned)
	if err != nil || !strings.Contains(out, "OK: ") || !strings.Contains(out, "signed checkpoints verify") {
		t.Fatalf("intact set, pinned key: %v\n%s", err, out)
	}
	out, err = runVerify("--dir", dir)
	if err != nil || !strings.Contains(out, "not pinned") {
		t.Fatalf("intact set, key file next to the log: %v\n%s", err, out)
	}
	out, err = runVerify(append(files, "--public-key", pinned, "--output", "json")...)
	var rep audit.SetReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Records < 50 || len(rep.Files) != len(files) || rep.Problem != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if _, err := runVerify("--dir", dir, "--public-key", wrong); err == nil || !strings.Contains(err.Error(), "not a pinned key") {
		t.Fatalf("another pinned key: err = %v", err)
	}
	// The active file alone: a part of the log, whose predecessor is noted, not missed.
	out, err = runVerify("--file", files[len(files)-1], "--public-key", pinned)
	if err != nil || !strings.Contains(out, "which was not given") {
		t.Fatalf("the active file alone: %v\n%s", err, out)
	}

	// A byte flipped in the second file: the record after it is named, exit status non-zero.
	raw, _ := os.ReadFile(files[1])
	lines := strings.SplitAfter(string(raw), "\n")
	lines[2] = strings.Replace(lines[2], "10.0.0.1", "10.0.0.9", 1)
	if err := os.WriteFile(files[1], []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runVerify("--dir", dir, "--public-key", pinned)
	want := filepath.Base(files[1]) + ": record 4 at offset"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(out, "FAILED") {
		t.Fatalf("flipped byte: err = %v, want %q\n%s", err, want, out)
	}
	out, err = runVerify("--dir", dir, "--public-key", pinned, "-o", "json")
	if err == nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Problem == nil || rep.Problem.Record != 4 {
		t.Fatalf("flipped byte, json: %v\n%s", err, out)
	}

	// The oldest file deleted (not by retention): named at its successor's first record.
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	want = filepath.Base(files[1]) + ": record 1"
	if _, err := runVerify("--dir", dir, "--public-key", pinned); err == nil || !strings.Contains(err.Error(), "retention removed it") || !strings.Contains(err.Error(), want) {
		t.Fatalf("the oldest file deleted: err = %v, want %q", err, want)
	}
}
