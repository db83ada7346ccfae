package sysapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/seal"
)

// adminCredential is the bootstrap credential as admin.json holds it.
type adminCredential struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
}

// writeAdminFile writes the bootstrap credential with mode 0600 and fsyncs it and its folder.
func writeAdminFile(path string, b identity.Bootstrap) error {
	data, _ := json.MarshalIndent(adminCredential{TenantID: b.TenantID, SubscriptionID: b.SubscriptionID, ClientID: b.ClientID, ClientSecret: b.ClientSecret}, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing admin credentials: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing admin credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing admin credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing admin credentials: %w", err)
	}
	return syncParent(path)
}

func readAdminFile(path string) (*adminCredential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a adminCredential
	if err := json.Unmarshal(b, &a); err != nil || a.ClientSecret == "" {
		return nil, fmt.Errorf("%s is not an admin credential file", path)
	}
	return &a, nil
}

// removeDurably removes path and fsyncs its folder (a missing file is not an error).
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", filepath.Base(path), err)
	}
	return syncParent(path)
}

func syncParent(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// insideDir reports whether path is dir or lies under it (after resolving both to absolute,
// cleaned paths and, where they exist, symbolic links).
func insideDir(path, dir string) bool {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return r
		}
		// A file not created yet: resolve its folder.
		if r, err := filepath.EvalSymlinks(filepath.Dir(a)); err == nil {
			return filepath.Join(r, filepath.Base(a))
		}
		return a
	}
	p, d := abs(path), abs(dir)
	return p == d || strings.HasPrefix(p, d+string(filepath.Separator))
}

// showBootstrap hands the new bootstrap credential to the operator. The file seal keeps it in
// <data_dir>/admin.json (its key sits next to the data anyway); the other seals protect a data
// folder whose reader must learn nothing, so they write it only to admin_credential_file (which
// start refuses inside the data folder) and otherwise print it once. Shamir returns it in the
// init answer instead of printing it.
func (c *Core) showBootstrap(boot identity.Bootstrap) error {
	path := c.cfg.AdminCredentialFile
	if path == "" && c.cfg.Seal.Type == seal.File {
		path = filepath.Join(c.cfg.DataDir, "admin.json")
	}
	if path != "" {
		if err := writeAdminFile(path, boot); err != nil {
			return err
		}
	}
	switch {
	case c.cfg.Seal.Type == seal.Shamir && path != "":
		fmt.Fprintf(c.stdout, "Bootstrap admin credential written to %s (mode 0600).\n", path)
	case c.cfg.Seal.Type == seal.Shamir:
		// The init answer carries it.
	case c.cfg.Seal.Type == seal.File:
		fmt.Fprintf(c.stdout, "Strongroom initialized %s.\nBootstrap admin service principal (shown once; also in %s, mode 0600):\n  tenantId:       %s\n  subscriptionId: %s\n  clientId:       %s\n  clientSecret:   %s\n",
			c.cfg.DataDir, path, boot.TenantID, boot.SubscriptionID, boot.ClientID, boot.ClientSecret)
	case path != "":
		fmt.Fprintf(c.stdout, "Strongroom initialized %s.\nBootstrap admin service principal written to %s (mode 0600); it is not kept in the data folder.\n", c.cfg.DataDir, path)
	default:
		fmt.Fprintf(c.stdout, "Strongroom initialized %s.\nBootstrap admin service principal (shown once, written nowhere: store it now):\n  tenantId:       %s\n  subscriptionId: %s\n  clientId:       %s\n  clientSecret:   %s\n",
			c.cfg.DataDir, boot.TenantID, boot.SubscriptionID, boot.ClientID, boot.ClientSecret)
	}
	return nil
}
