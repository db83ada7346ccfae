package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
)

// Run starts the server described by cfg and blocks until ctx ends, then drains and closes.
// The listener comes up even while the server is sealed, so operators can unseal it.
func Run(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))
	if err := hardenProcess(log, cfg.Mlock); err != nil {
		return err
	}
	tuneGC()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "audit"), 0o700); err != nil {
		return fmt.Errorf("creating audit folder: %w", err)
	}
	ln, err := listen(&cfg) // first: port 0 becomes the real port everything below sees
	if err != nil {
		return err
	}
	defer ln.Close() // if start-up fails; Shutdown closes it otherwise
	c, closeCore, err := openCore(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeCore(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cert, err := serverCertificate(cfg, log)
	if err != nil {
		return err
	}

	if err := c.start(ctx); err != nil {
		return err
	}
	defer c.seal()
	if !cfg.Cluster.Enabled() {
		stopSock, err := c.startOperatorSocket()
		if err != nil {
			return err
		}
		defer stopSock()
	}
	if cfg.Snapshots.Enabled() {
		sctx, stopSched := context.WithCancel(ctx)
		schedDone := make(chan struct{})
		go func() { defer close(schedDone); c.runSnapshotSchedule(sctx) }()
		defer func() { stopSched(); <-schedDone }() // before the store closes
	}

	srv := &http.Server{
		Handler:           c.withMetrics(wrapHandler(c, c.st, c.serving)),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	log.Info("strongroom listening", "listen", ln.Addr().String(), "public_url", cfg.PublicURL,
		"vaults", "https://{vault}."+cfg.DNSSuffix+portSuffix(cfg.Listen), "ca", filepath.Join(cfg.DataDir, "tls", "ca.pem"),
		"seal", cfg.Seal.Type, "sealed", c.sealed())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	c.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown did not drain cleanly", "err", err)
	}
	log.Info("stopped")
	return nil
}

// openCore opens what the server is made of below HTTP, in dependency order: the audit log and
// the metrics first, because a cluster node audits joins and operator calls and counts its
// compactions from the moment its store opens, then the store. closeCore closes the store, then
// the audit log, and returns the store's error.
func openCore(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) (c *core, closeCore func() error, err error) {
	al, err := audit.Open(filepath.Join(cfg.DataDir, "audit", "audit.log"))
	if err != nil {
		return nil, nil, err
	}
	c = &core{cfg: cfg, log: log, audit: al, stdout: stdout}
	c.metrics = c.newMetrics()
	if c.st, err = openStore(ctx, cfg, log, c); err != nil {
		al.Close()
		return nil, nil, err
	}
	return c, func() error {
		err := c.st.Close()
		al.Close()
		return err
	}, nil
}

// tuneGC raises the GC target unless the operator set GOGC: the live heap is small (tens of
// MB) and the default target made the collector run constantly under load. docs/benchmarks.md
// measured -35 % CPU per read at GOGC=400 and another -5 to -10 % at 800, for a peak RSS of
// ~200 MB at 15 k requests/s. GOMEMLIMIT still caps memory when set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
}

func portSuffix(listen string) string {
	_, port, _ := net.SplitHostPort(listen)
	if port == "443" {
		return ""
	}
	return ":" + port
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
