package seal

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A key file holds one root key as hex and a newline, mode 0600.

// readOrCreateKeyFile returns the key in path, creating the file with a fresh key (durably,
// exclusively) when it does not exist.
func readOrCreateKeyFile(path string) ([]byte, error) {
	key, err := ReadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = newRootKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating seal file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing seal file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("syncing seal file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing seal file: %w", err)
	}
	return key, syncDir(filepath.Dir(path))
}

// ReadKeyFile reads a key file.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seal file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != rootKeySize {
		return nil, fmt.Errorf("reading seal file %s: not a %d-byte hex key", path, rootKeySize)
	}
	return key, nil
}

// WriteKeyFile writes key (hex) to path atomically and durably: a temporary file in the same
// folder (mode 0600), fsynced, renamed over path, and the folder fsynced, so after a crash path
// holds either its old content or the whole new key, never a torn one.
func WriteKeyFile(path string, key []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("installing key file: %w", err)
	}
	ok = true
	return syncDir(dir)
}

// promoteKeyFile renames next over path and fsyncs the folder. When next is gone but path
// already holds want (another node sharing the key file promoted it first), it succeeds.
func promoteKeyFile(next, path string, want []byte) error {
	err := os.Rename(next, path)
	if errors.Is(err, fs.ErrNotExist) {
		if have, rerr := ReadKeyFile(path); rerr == nil && subtle.ConstantTimeCompare(have, want) == 1 {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("installing the new key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// removeKeyFile removes path durably (a missing file is not an error).
func removeKeyFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// removeKeyFileTemps removes temporary files a crash left behind while writing path.
func removeKeyFileTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
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
