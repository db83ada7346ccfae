package auditquery

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ActiveName is the file the server appends to; rotated files are named
// audit-YYYYMMDDTHHMMSSZ[-N].log by their rotation time (UTC), N counting rotations within the
// same second.
const ActiveName = "audit.log"

const rotatedLayout = "20060102T150405Z"

// logFile is one file of the audit folder, in the order its records were written.
type logFile struct {
	name    string
	rotated time.Time // when it was rotated; zero for the active file
	seq     int       // the -N suffix
	active  bool
}

// parseName recognises the audit folder's log files; every other file (checkpoints,
// signatures, temporary files) is not one.
func parseName(name string) (logFile, bool) {
	if name == ActiveName {
		return logFile{name: name, active: true}, true
	}
	rest, ok := strings.CutPrefix(name, "audit-")
	if !ok {
		return logFile{}, false
	}
	if rest, ok = strings.CutSuffix(rest, ".log"); !ok || len(rest) < len(rotatedLayout) {
		return logFile{}, false
	}
	stamp, suffix := rest[:len(rotatedLayout)], rest[len(rotatedLayout):]
	t, err := time.Parse(rotatedLayout, stamp)
	if err != nil {
		return logFile{}, false
	}
	f := logFile{name: name, rotated: t}
	if suffix != "" {
		n, ok := strings.CutPrefix(suffix, "-")
		seq, err := strconv.Atoi(n)
		if !ok || err != nil || seq <= 0 || n != strconv.Itoa(seq) {
			return logFile{}, false
		}
		f.seq = seq
	}
	return f, true
}

// before orders files chronologically: rotated files by time then suffix (lexical order would
// put "-1" before the unsuffixed file of the same second, and "-10" before "-2"), the active
// file last.
func (f logFile) before(g logFile) bool {
	if f.active != g.active {
		return g.active
	}
	if !f.rotated.Equal(g.rotated) {
		return f.rotated.Before(g.rotated)
	}
	return f.seq < g.seq
}

// listFiles returns the folder's log files in chronological order.
func listFiles(dir string) ([]logFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the audit folder: %w", err)
	}
	var files []logFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if f, ok := parseName(e.Name()); ok {
			files = append(files, f)
		}
	}
	slices.SortFunc(files, func(a, b logFile) int {
		switch {
		case a.before(b):
			return -1
		case b.before(a):
			return 1
		}
		return 0
	})
	return files, nil
}
