package seal

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/config"
)

// fileSeal keeps the root key in a key file (keyfile.go). A rekey writes the new key to
// "<key_file>.next" before the commit and renames it over the key file after it; a start finds
// the committed key in either.
type fileSeal struct {
	path string
	rec  *Config
	log  *slog.Logger
}

func newFileSeal(cfg config.SealConfig, dataDir string, rec *Config, log *slog.Logger) *fileSeal {
	path := cfg.KeyFile
	if path == "" {
		path = filepath.Join(dataDir, "seal.key")
	}
	return &fileSeal{path: path, rec: rec, log: log}
}

func (s *fileSeal) Type() Type     { return File }
func (s *fileSeal) Status() Status { return Status{Type: File} }

func (s *fileSeal) warn() {
	s.log.Warn("UNSAFE SEAL: the root key is kept in a plain file by the 'file' seal; anyone who can read both it and the data folder can read every secret. Use it for development only.", "key_file", s.path)
}

func (s *fileSeal) Init(context.Context, Params) (*Change, error) {
	s.warn()
	root, err := readOrCreateKeyFile(s.path)
	if err != nil {
		return nil, err
	}
	return &Change{Root: root, Config: Config{Type: File}}, nil
}

// Unseal reads the key file. A rekey that died after committing the keyring under the key in
// "<key_file>.next" but before renaming it into place (or a cluster member that was down when
// the commit reached it) finds the new key there and finishes the rename.
func (s *fileSeal) Unseal(_ context.Context, check KeyCheck) ([]byte, error) {
	s.warn()
	root, err := readOrCreateKeyFile(s.path)
	if err != nil {
		return nil, err
	}
	next := s.path + ".next"
	removeKeyFileTemps(s.path)
	removeKeyFileTemps(next)
	if ok, err := check(root); err != nil || ok {
		return root, nil // another failure is the caller's to report when it opens the keyring
	}
	key, err := ReadKeyFile(next)
	if err != nil {
		return root, nil
	}
	if ok, err := check(key); err != nil || !ok {
		clear(key)
		return root, nil
	}
	s.log.Warn("finishing an interrupted rekey: using the new key file")
	if err := promoteKeyFile(next, s.path, key); err != nil {
		clear(key)
		clear(root)
		return nil, fmt.Errorf("finishing rekey: %w", err)
	}
	clear(root)
	return key, nil
}

// Replace makes a fresh key; it reaches the disk in Stage.
func (s *fileSeal) Replace(context.Context, Params) (*Change, error) {
	root, err := newRootKey()
	if err != nil {
		return nil, err
	}
	return &Change{Root: root, Config: Config{Type: File}, Note: "the key file holds the new root key"}, nil
}

func (s *fileSeal) Stage(_ context.Context, root []byte) (*Staged, error) {
	next := s.path + ".next"
	if err := WriteKeyFile(next, root); err != nil {
		return nil, err
	}
	return &Staged{
		install: func(root []byte) error {
			want := root
			if want == nil {
				want, _ = ReadKeyFile(next)
				defer clear(want)
			}
			return promoteKeyFile(next, s.path, want)
		},
		drop: func() error { return removeKeyFile(next) },
	}, nil
}

func (s *fileSeal) Retire() error {
	var first error
	for _, p := range []string{s.path, s.path + ".next"} {
		if err := removeKeyFile(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}
