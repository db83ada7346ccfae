package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
)

func pinnedKeys(key ed25519.PrivateKey) audit.VerifyOptions {
	return audit.VerifyOptions{Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
}

func verifyDir(t *testing.T, dir string, key ed25519.PrivateKey) *audit.SetReport {
	t.Helper()
	files, err := audit.FilesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifySet(files, pinnedKeys(key))
	if err != nil {
		t.Fatalf("VerifySet(%v): %v", files, err)
	}
	return rep
}

// Retention keeps the newest rotated files, each deletion is recorded before it happens, and
// the remaining set verifies, also after a reopen that resumes from the checkpoint.
func TestRotation_RetentionAndResume(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	o := setOptions
	o.RetainFiles = 2
	writeSet(t, dir, 80, o, key)
	rotated, _ := audit.RotatedFiles(dir)
	if len(rotated) != 2 {
		t.Fatalf("rotated files after retention = %v, want 2", rotated)
	}
	rep := verifyDir(t, dir, key)
	if len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "removed by retention") {
		t.Fatalf("notes = %q, want the retention removal", rep.Notes)
	}

	l, err := audit.Open(filepath.Join(dir, "audit.log"), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := l.OpenBytesRead(); n > 4096 {
		t.Fatalf("reopen read %d bytes; the checkpoint should bound it", n)
	}
	if err := l.SetSigner(key); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.RotatedFiles != 2 || !st.Signing {
		t.Fatalf("Stats = %+v", st)
	}
	for range 30 {
		if err := write(l, "SecretSet"); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.BytesWritten == 0 || st.FileBytes == 0 {
		t.Fatalf("Stats after writes = %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rotated, _ := audit.RotatedFiles(dir); len(rotated) != 2 {
		t.Fatalf("rotated files = %v, want 2", rotated)
	}
	verifyDir(t, dir, key)
}

// A crash at any step of a rotation leaves a set that Open completes and that verifies.
func TestOpen_CrashDuringRotation(t *testing.T) {
	key := testKey(1)
	cases := []struct {
		name    string
		crash   func(t *testing.T, dir string) // after the active file was renamed
		wantErr string
	}{
		{"renamed, checkpoint not reset", func(*testing.T, string) {}, ""},
		{"checkpoint reset", func(t *testing.T, dir string) {
			ck := `{"v":1,"file":"audit.log","offset":0,"records":0,"lastHash":"","time":"x","seq":9}` + "\n"
			os.WriteFile(audit.CheckpointPath(filepath.Join(dir, "audit.log")), []byte(ck), 0o600)
		}, ""},
		{"new file created empty", func(t *testing.T, dir string) {
			os.Remove(audit.CheckpointPath(filepath.Join(dir, "audit.log")))
			os.WriteFile(filepath.Join(dir, "audit.log"), nil, 0o600)
		}, ""},
		{"renamed file truncated", func(t *testing.T, dir string) {
			last := lastRotated(t, dir)
			raw, _ := os.ReadFile(last)
			os.WriteFile(last, raw[:len(raw)/2], 0o600)
		}, "does not match the last rotated file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSet(t, dir, 40, setOptions, key)
			// Records after the last rotation, closed with a final checkpoint: the state a
			// rotation fsyncs before its rename.
			l, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{CheckpointRecords: 5})
			if err != nil {
				t.Fatal(err)
			}
			l.SetSigner(key)
			write(l, "SecretGet")
			write(l, "SecretGet")
			l.Close()
			if err := os.Rename(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit-20991231T235959Z.log")); err != nil {
				t.Fatal(err)
			}
			c.crash(t, dir)
			l, err = audit.Open(filepath.Join(dir, "audit.log"), setOptions)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Open err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.SetSigner(key)
			write(l, "SecretList")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep := verifyDir(t, dir, key)
			if got := rep.Files[len(rep.Files)-1].StartsAfter; got != "audit-20991231T235959Z.log" {
				t.Fatalf("the active file continues %q", got)
			}
		})
	}
}

func lastRotated(t *testing.T, dir string) string {
	t.Helper()
	names, err := audit.RotatedFiles(dir)
	if err != nil || len(names) == 0 {
		t.Fatalf("rotated files: %v, %v", names, err)
	}
	return filepath.Join(dir, names[len(names)-1])
}

// ops lists the operation names in the file at path.
func ops(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, line := range readLines(t, path) {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.OperationName)
	}
	return out
}

// Sealed, records are chained unsigned; the key covers them at once when it arrives, then by
// time only when records were written since; a stale release does not clear a newer key.
func TestLog_SignedCheckpointsByTimeAndSeal(t *testing.T) {
	key := testKey(1)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	write(l, "SecretGet")
	write(l, "SecretGet")
	if st := l.Stats(); st.Signing || st.RecordsSinceSignedCheckpoint != 2 {
		t.Fatalf("sealed Stats = %+v", st)
	}
	release, err := l.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	write(l, "SecretSet") // waits for the batch that carries the checkpoint queued before it
	time.Sleep(30 * time.Millisecond)
	l.SyncNow() // due by time: one record since
	write(l, "SecretGet")
	time.Sleep(30 * time.Millisecond)
	l.SyncNow()
	write(l, "SecretGet") // the checkpoint above is written with this batch
	stale := release
	release2, _ := l.Sign(key) // a new serving state: covers the record just written
	stale()                    // released by a serving state already replaced: the key stays
	if !l.Stats().Signing {
		t.Fatal("a stale release cleared the signing key")
	}
	time.Sleep(30 * time.Millisecond)
	l.SyncNow() // nothing written since: no checkpoint
	release2()  // a seal: the end is signed, the checkpoint file too
	if st := l.Stats(); st.Signing || st.RecordsSinceSignedCheckpoint != 0 {
		t.Fatalf("after release: %+v", st)
	}
	var ck audit.Checkpoint
	if raw, err := os.ReadFile(audit.CheckpointPath(path)); err != nil || json.Unmarshal(raw, &ck) != nil || ck.Sig == "" || ck.Records != 9 {
		t.Fatalf("checkpoint file after release: %+v, %v", ck, err)
	}
	write(l, "SecretGet")
	time.Sleep(30 * time.Millisecond)
	l.SyncNow() // no key: no checkpoint
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ops(t, path), ",")
	want := "SecretGet,SecretGet,AuditCheckpoint,SecretSet,AuditCheckpoint,SecretGet,AuditCheckpoint,SecretGet,AuditCheckpoint,SecretGet"
	if got != want {
		t.Fatalf("records = %s\nwant      %s", got, want)
	}
	rep, err := audit.VerifySet([]string{path}, pinnedKeys(key))
	if err != nil || rep.Signed != 4 || rep.UnsignedTail != 1 {
		t.Fatalf("VerifySet = %+v, %v; want 4 signed and 1 record after them", rep, err)
	}
}

// The disk alarm reads the free space and warns once per change.
func TestStats_DiskAlarm(t *testing.T) {
	audit.SetDiskCheckEvery(t, 0)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{MinFreeBytes: 1 << 62, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if st := l.Stats(); st.FreeBytes != -1 || st.LowDisk {
		t.Fatalf("before the first check: %+v", st)
	}
	write(l, "SecretGet")
	l.SyncNow()
	l.SyncNow()
	st := l.Stats()
	if !st.LowDisk || st.FreeBytes <= 0 || st.LastSync.IsZero() || !st.Healthy {
		t.Fatalf("Stats = %+v, want low disk", st)
	}
	if n := strings.Count(logs.String(), "disk is nearly full"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, logs.String())
	}
	l2, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l2.SyncNow()
	if st := l2.Stats(); st.LowDisk || st.FreeBytes <= 0 {
		t.Fatalf("Stats = %+v, want no alarm", st)
	}
}

// Verify of one file that continues a rotated one, and VerifyHistory after the file Open
// resumed was rotated away.
func TestVerify_AcrossRotation(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	audit.SetCheckpointPolicy(t, 1, 0)
	writeSet(t, dir, 10, audit.Options{CheckpointRecords: 5}, key) // one file, checkpointed at its end
	l, err := audit.Open(path, setOptions)
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		write(l, "SecretGet")
	}
	if res, err := l.VerifyHistory(context.Background()); err != nil || res.Records == 0 {
		t.Fatalf("VerifyHistory after rotation = %+v, %v", res, err)
	}
	l.Close()
	files, _ := audit.FilesIn(dir)
	if len(files) < 3 {
		t.Fatalf("files = %v", files)
	}
	res, err := audit.Verify(files[1])
	if err != nil || res.StartsAfter != filepath.Base(files[0]) {
		t.Fatalf("Verify(%s) = %+v, %v; want it to continue %s", files[1], res, err, files[0])
	}
}

func TestRecord_AppendJSON_Checkpoint(t *testing.T) {
	r := audit.Record{Time: "t", OperationName: audit.OpLogStart, Category: "AuditEvent", Properties: audit.Properties{HTTPStatusCode: 200},
		Checkpoint: &audit.ChainCheckpoint{Version: 2, Seq: 3, Records: 7, Hash: strings.Repeat("a", 64), Predecessor: "audit-x<y>.log",
			Removed: []string{"a", "b&c"}, KeyID: "k", Sig: "s+/="}}
	want, _ := json.Marshal(&r)
	got := append(r.AppendJSON(nil), `"}`...)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
	}
}

func TestSortFiles_Chronological(t *testing.T) {
	got := []string{"audit.log", "audit-20261202T130000Z-10.log", "x/audit-20261202T130000Z-2.log", "audit-20261202T130000Z.log",
		"audit-20261201T230000Z-1.log", "copy.log", "audit-20261202T130000Z-1.log"}
	audit.SortFiles(got)
	want := "audit-20261201T230000Z-1.log,audit-20261202T130000Z.log,audit-20261202T130000Z-1.log,x/audit-20261202T130000Z-2.log,audit-20261202T130000Z-10.log,copy.log,audit.log"
	if strings.Join(got, ",") != want {
		t.Fatalf("SortFiles = %v\nwant %s", got, want)
	}
}

// BenchmarkLog_WriteSigned is BenchmarkLog_Write with what a server adds: a signed checkpoint
// every 1000 records and rotation at 64 MiB.
func BenchmarkLog_WriteSigned(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{MaxFileBytes: 64 << 20, CheckpointRecords: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetSigner(testKey(1))
	allowed := true
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := audit.Record{Time: "2026-11-23T23:17:02.0000000Z", ResourceID: "/SUBSCRIPTIONS/X/RESOURCEGROUPS/BENCH/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/BENCHKV",
				OperationName: "SecretGet", OperationVersion: "7.4", Category: "AuditEvent", ResultType: "Success", ResultSignature: "OK",
				DurationMs: 1, CallerIPAddress: "127.0.0.1", RequestID: "6f1c0e4e-4d0b-4c57-9d43-3f3e3c1f6f1a",
				Identity: &audit.Identity{Claim: audit.Claims{AppID: "a", IdentityType: "app", ObjectID: "o", TenantID: "t"}},
				Properties: audit.Properties{ID: "https://benchkv.vault.localhost:18443/secrets/perf-0001/0123456789abcdef0123456789abcdef", ClientInfo: "Go-http-client/1.1",
					HTTPStatusCode: 200, RequestURI: "https://benchkv.vault.localhost:18443/secrets/perf-0001/?api-version=7.4", IsRbacAuthorized: &allowed, TLSVersion: "TLS1_3"}}
			if err := l.Write(context.Background(), &rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
