package snapshotfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestWriteFile_PruneKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var paths []string
	for i := range 4 {
		p, size, err := WriteFile(dir, t0.Add(time.Duration(i)*time.Second), func(w io.Writer) error {
			_, err := io.WriteString(w, "body")
			return err
		})
		if err != nil || size != 4 {
			t.Fatalf("write %d: size %d, %v", i, size, err)
		}
		paths = append(paths, filepath.Base(p))
	}
	if paths[0] != "strongroom-20260102T030405.000Z.snap" {
		t.Fatalf("name %q", paths[0])
	}
	other := filepath.Join(dir, "notes.txt") // not a snapshot: never pruned
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := Prune(dir, 2); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want 2 removed", n, err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"notes.txt", paths[2], paths[3]}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

func TestWriteFile_FailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	_, _, err := WriteFile(dir, time.Now(), func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %d files after a failed write", len(entries))
	}
}
