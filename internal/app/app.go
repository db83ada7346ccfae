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
	"sync/atomic"
	"time"

	"github.com/strongroom/strongroom/internal/alerts"
	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/metrics/scrape"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/sysapi"
)

// server is what Run builds, each part from the ones before it.
type server struct {
	cfg   config.Config
	log   *slog.Logger
	audit *audit.Log
	// recorder is where records go: the log, with failures counted, then the extra sinks.
	recorder audit.Recorder
	metrics  *metrics.Registry
	st       store.Store
	sys      *sysapi.Core
	// alertEngine is the serving state's alert engine (nil while sealed or with alerts off),
	// for the service's rotation failures, which it is built after.
	alertEngine atomic.Pointer[alerts.Engine]
}

// Run starts the server described by cfg and blocks until ctx ends, then drains and closes.
// The listener comes up even while the server is sealed, so operators can unseal it.
func Run(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))
	if err := hardenProcess(log, cfg.Mlock); err != nil {
		return err
	}
	tuneGC(cfg.MemoryLimitMiB)
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
	s, closeServer, err := open(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeServer(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	// Open resumed the audit chain from its checkpoint; the history before it is re-hashed in
	// the background (a log that fails it stops taking records, so requests are refused).
	go verifyAuditHistory(ctx, s.audit, log)
	certs, err := serverCertSource(cfg, log)
	if err != nil {
		return err
	}
	certs.reloadOnHangup(ctx) // SIGHUP: new handshakes get the re-read certificate
	if err := s.sys.Start(ctx); err != nil {
		return err
	}
	defer s.sys.Seal()
	stopJobs, err := s.startSnapshotJobs(ctx)
	if err != nil {
		return err
	}
	defer stopJobs() // before the store closes

	srv := &http.Server{
		Handler:           scrape.Handler(s.scrapeOptions(), wrapHandler(s.sys, s.st, s.sys.Ready)),
		TLSConfig:         &tls.Config{MinVersion: s.cfg.TLS.MinTLSVersion(), GetCertificate: certs.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext:       httpapi.ConnContext, // each connection's bearer-token memo
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	log.Info("strongroom listening", "listen", ln.Addr().String(), "public_url", cfg.PublicURL,
		"vaults", "https://{vault}."+cfg.DNSSuffix+portSuffix(cfg.Listen), "ca", filepath.Join(cfg.DataDir, "tls", "ca.pem"),
		"seal", cfg.Seal.Type, "sealed", s.sys.Sealed())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	s.sys.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown did not drain cleanly", "err", err)
	}
	log.Info("stopped")
	return nil
}

// open builds what the server is made of below HTTP, in dependency order: the audit log and
// the metrics first, because a cluster node audits joins and operator calls and counts its
// compactions from the moment its store opens, then the store, then the seal-state machine over
// it. closeServer closes the store, then the audit log, and returns the store's error.
func open(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) (s *server, closeServer func() error, err error) {
	al, err := audit.Open(filepath.Join(cfg.DataDir, "audit", "audit.log"), auditOptions(cfg, log))
	if err != nil {
		return nil, nil, err
	}
	s = &server{cfg: cfg, log: log, audit: al, metrics: metrics.New(cfg.DNSSuffix)}
	rec, closeSinks, err := startAuditSinks(cfg.Audit.Sinks, countingAudit{Log: al, failures: s.metrics.AuditWriteFailures}, s.metrics, log)
	if err != nil {
		al.Close()
		return nil, nil, err
	}
	s.recorder = rec
	if s.st, err = openStore(ctx, s); err != nil {
		closeSinks()
		al.Close()
		return nil, nil, err
	}
	s.sys = sysapi.New(sysapi.Options{Config: cfg, Log: log, Store: s.st, Audit: s.auditLog(),
		Node: clusterNode(s.st), Stdout: stdout, Build: s.build})
	s.registerGauges()
	return s, func() error {
		err := s.st.Close()
		closeSinks() // what the log wrote last is queued for them before it closes
		al.Close()
		return err
	}, nil
}

// verifyAuditHistory re-hashes the audit log before the checkpoint Open resumed from.
func verifyAuditHistory(ctx context.Context, al *audit.Log, log *slog.Logger) {
	start := time.Now()
	res, err := al.VerifyHistory(ctx)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		log.Error("the audit log's history does not verify: requests are refused until it is restored", "err", err)
	default:
		log.Info("audit log history verified", "records", res.Records, "bytes", res.Bytes, "took", time.Since(start).Round(time.Millisecond).String())
	}
}

// tuneGC raises the GC target unless the operator set GOGC: the live heap is small (tens of
// MB) and the default target made the collector run constantly under load. docs/benchmarks.md
// measured -35 % CPU per read at GOGC=400 and another -5 to -10 % at 800, for a peak RSS of
// ~200 MB at 15 k requests/s. GOMEMLIMIT still caps memory when set.
// tuneGC trades memory for throughput (GOGC 800: few collections on the request path) and then
// bounds what that trade may cost with a soft memory limit (config memory_limit_mib), so a write
// burst at a million records does not grow the heap ninefold. The environment's GOGC and
// GOMEMLIMIT win over both.
func tuneGC(limitMiB int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if os.Getenv("GOMEMLIMIT") == "" && limitMiB > 0 {
		debug.SetMemoryLimit(int64(limitMiB) << 20)
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
