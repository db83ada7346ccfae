package bench_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strongroom/strongroom/internal/bench"
)

func TestCountRecords(t *testing.T) {
	// payloads start with their op count as a uvarint, as store.AppendOps writes them.
	two, three := []byte{2, 'a', 'b'}, []byte{3, 'c', 'd', 'e', 'f'}
	rec := bench.WALRecord
	corrupt := rec(7, three)
	corrupt[len(corrupt)-1] ^= 0xff
	tests := []struct {
		name       string
		data       []byte
		bytes, ops int64
	}{
		{"empty", nil, 0, 0},
		{"zeros (a fresh segment)", make([]byte, 4096), 0, 0},
		{"two records then zeros", cat(rec(7, two), rec(7, three), make([]byte, 64)), 8, 5},
		{"a record of the file's previous life ends it", cat(rec(7, two), rec(5, three)), 3, 2},
		{"only old records (checkpointed, renamed)", cat(rec(5, two), rec(5, three)), 0, 0},
		{"bad checksum ends it", cat(rec(7, two), corrupt, rec(7, two)), 3, 2},
		{"torn record ends it", cat(rec(7, two), rec(7, three)[:20]), 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, o := bench.CountRecords(tt.data, 7)
			if b != tt.bytes || o != tt.ops {
				t.Fatalf("= %d bytes, %d ops; want %d, %d", b, o, tt.bytes, tt.ops)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWALPending_SumsSegmentsByName(t *testing.T) {
	dir := t.TempDir()
	wal := filepath.Join(dir, "strongroom.db.wal")
	must(t, os.MkdirAll(wal, 0o700))
	must(t, os.WriteFile(filepath.Join(wal, "0000000000000003.log"), cat(bench.WALRecord(3, []byte{1, 'x'}), make([]byte, 100)), 0o600))
	must(t, os.WriteFile(filepath.Join(wal, "0000000000000004.log"), cat(bench.WALRecord(2, []byte{9, 'y'})), 0o600)) // spare: old records
	must(t, os.WriteFile(filepath.Join(wal, "notes.txt"), bench.WALRecord(0, []byte{5}), 0o600))
	b, o, err := bench.WALPending(dir)
	if err != nil || b != 2 || o != 1 {
		t.Fatalf("= %d bytes, %d ops, %v; want 2, 1", b, o, err)
	}
	if _, _, err := bench.WALPending(t.TempDir()); err == nil {
		t.Fatal("no log folder: want an error")
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{
		"strongroom.db": 1000, "strongroom.db.wal/0000000000000001.log": 300, "strongroom.db.wal/0000000000000002.log": 200,
		"audit/audit.log": 70, "tls/ca.pem": 5, "admin.json": 4, "snapshots/s1.snap": 11,
	}
	for name, n := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700))
		must(t, os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o600))
	}
	u, err := bench.DiskUsageOf(dir)
	want := bench.DiskUsage{StoreBytes: 1500, DBBytes: 1000, WALBytes: 500, AuditBytes: 70, OtherBytes: 20}
	if err != nil || u != want {
		t.Fatalf("= %+v, %v; want %+v", u, err, want)
	}
}

// fadvise evicts a just-written file's pages (on a disk file system; tmpfs keeps them: skip).
func TestDropCaches_Fadvise(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temp dir is on tmpfs (a property of this machine, not a missing component): the page cache is the storage")
	}
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "f"), bytes.Repeat([]byte("x"), 1<<20), 0o600))
	before, err := bench.CachedBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before == 0 {
		t.Skip("the written file is not in the page cache (not a missing component): eviction cannot be observed")
	}
	must(t, bench.DropCaches(dir, bench.ColdCacheFadvise))
	after, err := bench.CachedBytes(dir)
	if err != nil || after >= before {
		t.Fatalf("cached %d bytes before, %d after (%v): want fewer after", before, after, err)
	}
}

func TestListeningPort(t *testing.T) {
	tests := []struct {
		log  string
		want int
	}{
		{`time=x level=INFO msg="strongroom listening" listen=127.0.0.1:39153 public_url=https://localhost:39153`, 39153},
		{"time=x level=INFO msg=\"strongroom unsealed\"\ntime=x level=INFO msg=\"strongroom listening\" listen=[::1]:8443\n", 8443},
		{`time=x level=INFO msg="strongroom unsealed" listen=127.0.0.1:1`, 0},
		{`msg="strongroom listening" listen=127.0.0.1:0`, 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got, ok := bench.ListeningPort(tt.log); got != tt.want || ok != (tt.want != 0) {
			t.Errorf("ListeningPort(%q) = %d, %t; want %d", tt.log, got, ok, tt.want)
		}
	}
}

// The server log keeps its start (the listening line) and its latest lines, bounded.
func TestTailLog(t *testing.T) {
	var l bench.TailLog
	l.Write([]byte("first line\n"))
	for range 1000 {
		l.Write([]byte(strings.Repeat("m", 100) + "\n"))
	}
	l.Write([]byte("last line\n"))
	s := l.String()
	if !strings.HasPrefix(s, "first line\n") || !strings.HasSuffix(s, "last line\n") || len(s) > 2*bench.TailLogKeep+16 {
		t.Fatalf("len %d, starts %q, ends %q", len(s), s[:20], s[len(s)-20:])
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
