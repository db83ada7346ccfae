package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// FileSeal keeps the root key in a file (hex, mode 0600). It protects nothing against someone who
// can read both that file and the data folder; it exists so that `strongroom server` works with no
// setup. Stronger seals (Shamir, PKCS#11) release the same 32-byte root key.
type FileSeal struct {
	Path string
}

// RootKey returns the root key, creating the file with a fresh key on first use.
func (s FileSeal) RootKey() ([]byte, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating root key: %w", err)
		}
		f, err := os.OpenFile(s.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
		return key, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("reading seal file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("reading seal file %s: not a %d-byte hex key", s.Path, KeySize)
	}
	return key, nil
}
