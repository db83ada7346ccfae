package seal_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/seal"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestNew_Refuses(t *testing.T) {
	cases := []struct {
		name    string
		cfg     config.SealConfig
		rec     *seal.Config
		wantErr string
	}{
		{"another recorded type", config.SealConfig{Type: seal.File}, &seal.Config{Type: seal.Shamir}, `uses the "shamir" seal but the configuration says "file"`},
		{"unknown type", config.SealConfig{Type: "vaultish"}, nil, `unknown seal type "vaultish"`},
		{"pkcs11 without a module", config.SealConfig{Type: seal.PKCS11}, nil, "seal.pkcs11.module"},
		{"pkcs11 with two pin sources", config.SealConfig{Type: seal.PKCS11, PKCS11: config.PKCS11Config{Module: "/x.so", TokenLabel: "t", PINEnv: "A", PINFile: "/b"}}, nil, "exactly one of pin_env and pin_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := seal.New(tc.cfg, t.TempDir(), tc.rec, quiet); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
			}
		})
	}
}

// keyIs is a KeyCheck accepting only want.
func keyIs(want []byte) seal.KeyCheck {
	return func(root []byte) (bool, error) { return bytes.Equal(root, want), nil }
}

func TestFileSeal_InitUnsealRekey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	s, err := seal.New(config.SealConfig{Type: seal.File}, dir, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Init(ctx, seal.Params{})
	if err != nil || ch.Config.Type != seal.File {
		t.Fatalf("init: %v %+v", err, ch)
	}
	if got, err := seal.ReadKeyFile(path); err != nil || !bytes.Equal(got, ch.Root) {
		t.Fatalf("the key file holds %x, %v; want the new root key", got, err)
	}
	s, _ = seal.New(config.SealConfig{Type: seal.File}, dir, &ch.Config, quiet)
	if got, err := s.Unseal(ctx, keyIs(ch.Root)); err != nil || !bytes.Equal(got, ch.Root) {
		t.Fatalf("unseal = %x, %v", got, err)
	}
	next, err := s.Replace(ctx, seal.Params{})
	if err != nil || bytes.Equal(next.Root, ch.Root) || next.Finish(seal.Committed) != nil {
		t.Fatalf("replace: %v", err)
	}
	staged, err := s.Stage(ctx, next.Root)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := seal.ReadKeyFile(path + ".next"); !bytes.Equal(got, next.Root) {
		t.Fatal("stage did not write <key_file>.next")
	}
	// Committed, then a crash before Install: the next start finds the new key in .next.
	if got, err := s.Unseal(ctx, keyIs(next.Root)); err != nil || !bytes.Equal(got, next.Root) {
		t.Fatalf("unseal after an interrupted rekey = %x, %v", got, err)
	}
	if got, _ := seal.ReadKeyFile(path); !bytes.Equal(got, next.Root) {
		t.Fatal("unseal did not finish the interrupted rekey")
	}
	if err := staged.Install(next.Root); err != nil {
		t.Fatalf("install after another node (or a start) promoted the key: %v", err)
	}
	if err := s.Retire(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("retire left the key file: %v", err)
	}
}

func TestFileSeal_StageDrop(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := seal.New(config.SealConfig{Type: seal.File}, dir, &seal.Config{Type: seal.File}, quiet)
	ch, _ := s.Replace(ctx, seal.Params{})
	staged, err := s.Stage(ctx, ch.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := staged.Drop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "seal.key.next")); !os.IsNotExist(err) {
		t.Fatalf("drop left <key_file>.next: %v", err)
	}
}

func TestShamirSeal(t *testing.T) {
	ctx := context.Background()
	s, _ := seal.New(config.SealConfig{Type: seal.Shamir}, t.TempDir(), nil, quiet)
	ch, err := s.Init(ctx, seal.Params{Shares: 3, Threshold: 2})
	if err != nil || len(ch.Shares) != 3 || ch.Config.Type != seal.Shamir || ch.Config.Shares != 3 || ch.Config.Threshold != 2 {
		t.Fatalf("init: %v %+v", err, ch)
	}
	s, _ = seal.New(config.SealConfig{Type: seal.Shamir}, t.TempDir(), &ch.Config, quiet)
	if _, err := s.Unseal(ctx, keyIs(ch.Root)); !errors.Is(err, seal.ErrNeedsShares) {
		t.Fatalf("unseal without shares: %v", err)
	}
	sh := s.(seal.Shares)
	if root, err := sh.Add(ch.Shares[2]); root != nil || err != nil {
		t.Fatalf("one share: %x %v", root, err)
	}
	if st := s.Status(); st != (seal.Status{Type: seal.Shamir, Shares: 3, Threshold: 2, Progress: 1}) {
		t.Fatalf("status %+v", st)
	}
	if root, err := sh.Add(ch.Shares[0]); err != nil || !bytes.Equal(root, ch.Root) {
		t.Fatalf("two shares: %v", err)
	}
	next, err := s.Replace(ctx, seal.Params{})
	if err != nil || len(next.Shares) != 3 || next.Config.Threshold != 2 {
		t.Fatalf("a rekey without counts keeps the recorded ones: %v %+v", err, next)
	}
}
