package test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

// readAuditRecords reads every record of a server's audit log, rotated files (audit-*.log, in
// name order, which is chronological) first, the active audit.log last.
func readAuditRecords(t *testing.T, dataDir string) []audit.Record {
	t.Helper()
	dir := filepath.Join(dataDir, "audit")
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	files = append(files, filepath.Join(dir, "audit.log"))
	var out []audit.Record
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatalf("reading the audit log: %v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var r audit.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				t.Fatalf("%s: a record that is not JSON: %v", name, err)
			}
			out = append(out, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return out
}
