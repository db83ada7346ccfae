package snapshotfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A folder of scheduled snapshots holds files named
// "strongroom-<UTC time, 20060102T150405.000Z>.snap", so that names sort by age. Each is written
// to a temporary file in the same folder, fsynced, renamed and the folder fsynced, so a crash
// leaves either the complete file or none; Prune keeps the newest.
const (
	filePrefix = "strongroom-"
	fileSuffix = ".snap"
	timeFormat = "20060102T150405.000Z"
	tmpPrefix  = ".strongroom-snapshot-"
)

// WriteFile writes one snapshot file into dir atomically, named for now, and returns its path
// and size; write writes the file's content. Temporary files a failed write left are removed
// first: the caller must be the folder's only writer.
func WriteFile(dir string, now time.Time, write func(io.Writer) error) (string, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("creating snapshot folder: %w", err)
	}
	// Leftovers of a write that died (crash, full disk).
	if olds, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*")); err == nil {
		for _, o := range olds {
			_ = os.Remove(o)
		}
	}
	final := filepath.Join(dir, filePrefix+now.UTC().Format(timeFormat)+fileSuffix)
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("creating snapshot file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return "", 0, err
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("syncing snapshot file: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("closing snapshot file: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, fmt.Errorf("naming snapshot file: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return final, fi.Size(), err
	}
	return final, fi.Size(), nil
}

// Prune removes the oldest snapshot files in dir beyond retain and returns how many it removed.
// Only files named as WriteFile names them are touched.
func Prune(dir string, retain int) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, filePrefix) && strings.HasSuffix(n, fileSuffix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	removed := 0
	var errs []error
	for len(names)-removed > retain {
		if err := os.Remove(filepath.Join(dir, names[removed])); err != nil {
			errs = append(errs, err)
		}
		removed++
	}
	if removed > 0 {
		errs = append(errs, syncDir(dir))
	}
	return removed, errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing folder: %w", err)
	}
	return nil
}
