package bolt

import (
	"fmt"
	"io"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// stageRestore writes a file restored from r next to path, checks it and rewrites it with live
// pages only, and returns the rewritten file's path; the caller swaps it in (or removes it). A
// snapshot is a page-for-page copy of its source file, free pages included, so records deleted
// there before that store compacted would otherwise come back into this data folder. Nothing
// here touches the live store: writes go on meanwhile.
func stageRestore(path string, r io.Reader) (string, error) {
	raw, live := path+".restore", path+".restore-live"
	_ = os.Remove(raw)
	_ = os.Remove(live)
	defer os.Remove(raw)
	if err := writeFileSync(raw, r); err != nil {
		return "", fmt.Errorf("restoring: %w", err)
	}
	if err := checkFormat(raw); err != nil {
		return "", fmt.Errorf("restoring: %w", err)
	}
	if err := compactFile(raw, live); err != nil {
		os.Remove(live)
		return "", fmt.Errorf("restoring: %w", err)
	}
	return live, nil
}

// compactFile copies the live records of the store file src (the meta bucket included) into a
// new, durable file dst.
func compactFile(src, dst string) error {
	in, err := bbolt.Open(src, 0o600, &bbolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("compacting %s: %w", src, err)
	}
	defer in.Close()
	out, err := bbolt.Open(dst, 0o600, fileOptions())
	if err != nil {
		return fmt.Errorf("compacting: opening %s: %w", dst, err)
	}
	if err := bbolt.Compact(out, in, 64<<20); err != nil {
		out.Close()
		return fmt.Errorf("compacting %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("compacting: syncing: %w", err)
	}
	return out.Close()
}
