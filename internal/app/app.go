package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
)

// Run starts the server described by cfg and blocks until ctx ends, then drains and closes.
func Run(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "audit"), 0o700); err != nil {
		return fmt.Errorf("creating audit folder: %w", err)
	}

	sealPath := cfg.Seal.KeyFile
	if sealPath == "" {
		sealPath = filepath.Join(cfg.DataDir, "seal.key")
	}
	log.Warn("UNSAFE SEAL: the root key is kept in a plain file by the 'file' seal; anyone who can read both it and the data folder can read every secret. Use it for development only.", "key_file", sealPath)
	rootKey, err := keyring.FileSeal{Path: sealPath}.RootKey()
	if err != nil {
		return err
	}

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	kr, err := keyring.Open(ctx, st, rootKey)
	clear(rootKey)
	if err != nil {
		return err
	}

	ids, err := identity.New(ctx, st, kr, identity.Options{PublicURL: cfg.PublicURL})
	if err != nil {
		return fmt.Errorf("starting identity service: %w", err)
	}
	boot, created, err := ids.EnsureBootstrap(ctx)
	if err != nil {
		return fmt.Errorf("creating bootstrap admin: %w", err)
	}
	if created {
		if err := writeAdminFile(filepath.Join(cfg.DataDir, "admin.json"), boot); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Strongroom initialized %s.\nBootstrap admin service principal (shown once; also in %s, mode 0600):\n  tenantId:       %s\n  subscriptionId: %s\n  clientId:       %s\n  clientSecret:   %s\n",
			cfg.DataDir, filepath.Join(cfg.DataDir, "admin.json"), boot.TenantID, boot.SubscriptionID, boot.ClientID, boot.ClientSecret)
		boot.ClientSecret = ""
	}

	_, port, _ := net.SplitHostPort(cfg.Listen)
	portSuffix := ""
	if port != "443" {
		portSuffix = ":" + port
	}
	svc, err := service.New(ctx, st, kr, service.Options{
		SubscriptionID: ids.SubscriptionID(),
		TenantID:       ids.TenantID(),
		VaultURI:       func(name string) string { return "https://" + strings.ToLower(name) + "." + cfg.DNSSuffix + portSuffix },
		Assignments:    []authz.Assignment{{ID: "bootstrap-admin-owner", PrincipalID: ids.AdminObjectID(), Role: authz.Owner, Scope: "/"}},
	})
	if err != nil {
		return err
	}

	al, err := audit.Open(filepath.Join(cfg.DataDir, "audit", "audit.log"))
	if err != nil {
		return err
	}
	defer al.Close()

	cert, err := ensureTLS(filepath.Join(cfg.DataDir, "tls"), []string{"localhost", "*." + cfg.DNSSuffix, cfg.DNSSuffix})
	if err != nil {
		return err
	}
	var ready atomic.Bool
	handler := httpapi.New(httpapi.Config{
		PublicURL: cfg.PublicURL, DNSSuffix: cfg.DNSSuffix, TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID(),
		VaultRequestsPer10s: cfg.VaultRequestsPer10s, Ready: ready.Load,
	}, svc, ids, issuer.New(ids, cfg.PublicURL), al, log)

	srv := &http.Server{
		Handler:           wrapHandler(handler, st),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	purgeCtx, stopPurger := context.WithCancel(context.Background())
	defer stopPurger()
	go svc.RunPurger(purgeCtx, cfg.PurgeInterval, log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	ready.Store(true)
	log.Info("strongroom ready", "listen", ln.Addr().String(), "public_url", cfg.PublicURL, "vaults", "https://{vault}."+cfg.DNSSuffix+portSuffix, "ca", filepath.Join(cfg.DataDir, "tls", "ca.pem"))

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	ready.Store(false)
	stopPurger()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown did not drain cleanly", "err", err)
	}
	log.Info("stopped")
	return nil
}

func writeAdminFile(path string, b identity.Bootstrap) error {
	data, _ := json.MarshalIndent(map[string]string{
		"tenantId": b.TenantID, "subscriptionId": b.SubscriptionID, "clientId": b.ClientID, "clientSecret": b.ClientSecret,
	}, "", "  ")
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
	return f.Close()
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
