package bench

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scaleRun is one scale benchmark: the server it owns and what it needs to talk to it.
type scaleRun struct {
	cfg   ScaleConfig
	srv   *serverProc
	roots *x509.CertPool
	admin Admin
	hc    *http.Client // control plane: tokens, ARM
	lay   layout
	token string // the current data-plane token
}

// RunScale starts a server on cfg.DataDir, grows it to cfg.Baseline and then to cfg.Secrets
// secrets, measures each point (list pages, reads, idle CPU, memory, restarts) and stops the
// server. It signals only the process it started.
func RunScale(ctx context.Context, cfg ScaleConfig) (res ScaleResult, err error) {
	if err := cfg.Validate(); err != nil {
		return ScaleResult{}, err
	}
	if cfg.ServerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return ScaleResult{}, fmt.Errorf("finding the server binary: %w", err)
		}
		cfg.ServerBinary = exe
	}
	host, portText, _ := net.SplitHostPort(cfg.Listen) // checked by Validate
	port, _ := strconv.Atoi(portText)
	res = ScaleResult{ServerBinary: cfg.ServerBinary, DataDir: cfg.DataDir, FreshDataDir: isFresh(cfg.DataDir),
		Secrets: cfg.Secrets, Vaults: cfg.Vaults, SecretsPerVault: cfg.Secrets / cfg.Vaults, Workers: cfg.Workers,
		ValueSize: cfg.ValueSize, ServerFlags: cfg.ServerFlags, ColdCache: cfg.ColdCache}
	s := &scaleRun{cfg: cfg, srv: &serverProc{bin: cfg.ServerBinary, dataDir: cfg.DataDir, host: host, port: port, extra: cfg.ServerFlags}}
	begin := time.Now()
	defer func() { res.WallSec = time.Since(begin).Seconds() }()
	if err := s.srv.start(); err != nil {
		return res, err
	}
	defer s.srv.stop(cfg.RestartTimeout)
	if err := s.firstStart(ctx); err != nil {
		return res, err
	}
	defer s.hc.CloseIdleConnections()
	deadline := begin.Add(cfg.MaxDuration)
	small, err := s.point(ctx, 0, cfg.Baseline, deadline)
	res.Baseline = small
	if err != nil {
		return res, err
	}
	res.Written = small.Secrets
	if cfg.Secrets > cfg.Baseline && !small.Truncated {
		large, err := s.point(ctx, cfg.Baseline, cfg.Secrets, deadline)
		res.AtN = &large
		if err != nil {
			return res, err
		}
		res.Written = large.Secrets
	}
	res.Truncated = res.Written < cfg.Secrets
	if err := s.srv.stop(cfg.RestartTimeout); err != nil {
		return res, err
	}
	if res.Disk, err = diskUsage(cfg.DataDir); err != nil {
		return res, err
	}
	if res.Written > 0 {
		res.StoreBytesPerSecret = float64(res.Disk.StoreBytes) / float64(res.Written)
		res.DBBytesPerSecret = float64(res.Disk.DBBytes) / float64(res.Written)
	}
	return res, nil
}

// isFresh reports whether dir is missing or empty.
func isFresh(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0)
}

func (s *scaleRun) server() string { return "https://localhost:" + strconv.Itoa(s.srv.port) }

func (s *scaleRun) progress(format string, args ...any) {
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "bench scale: "+format+"\n", args...)
	}
}

// firstStart waits until the server answers /health and the data folder holds its CA and the
// admin credential, and loads both.
func (s *scaleRun) firstStart(ctx context.Context) error {
	s.progress("starting %s on %s", s.srv.bin, s.cfg.DataDir)
	err := s.srv.waitReady(ctx, s.cfg.RestartTimeout, func(ctx context.Context) error {
		roots, err := loadCA(filepath.Join(s.cfg.DataDir, "tls", "ca.pem"))
		if err != nil {
			return err
		}
		tr := newTransport(roots, false)
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.server()+"/health", nil)
		if err != nil {
			return err
		}
		if _, err := do(hc, req, http.StatusOK); err != nil {
			return err
		}
		admin, err := readAdmin(filepath.Join(s.cfg.DataDir, "admin.json"))
		if err != nil {
			return err
		}
		s.roots, s.admin = roots, admin
		return nil
	})
	if err != nil {
		return err
	}
	s.hc = &http.Client{Transport: newTransport(s.roots, false), Timeout: 30 * time.Second}
	s.lay = newLayout(s.cfg, s.srv.port)
	return nil
}

// restart stops the server, drops the data folder from the page cache (unless method is off)
// and starts the same binary on the same folder, timing the start up to the first successful
// read of secret 0.
func (s *scaleRun) restart(ctx context.Context, method string) (RestartStats, error) {
	st := RestartStats{Cache: "warm"}
	if method != ColdCacheOff {
		st.Cache = method
	}
	s.progress("restarting the server (%s)", st.Cache)
	t0 := time.Now()
	if err := s.srv.stop(s.cfg.RestartTimeout); err != nil {
		return st, err
	}
	st.StopSec = time.Since(t0).Seconds()
	if method != ColdCacheOff {
		if err := dropCaches(s.cfg.DataDir, method); err != nil {
			return st, err
		}
		cached, err := cachedBytes(s.cfg.DataDir)
		if err != nil {
			return st, err
		}
		st.CachedAfterDropBytes = &cached
	}
	tr := newTransport(s.roots, false)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	start := time.Now()
	if err := s.srv.start(); err != nil {
		return st, err
	}
	if err := s.srv.waitReady(ctx, s.cfg.RestartTimeout, func(ctx context.Context) error { return s.readFirst(ctx, hc) }); err != nil {
		return st, err
	}
	st.FirstGetSec = time.Since(start).Seconds()
	// The line was written before the server answered, but the pipe may still be carrying it.
	for wait := time.Now().Add(2 * time.Second); s.srv.log.listening().IsZero() && time.Now().Before(wait); {
		time.Sleep(5 * time.Millisecond)
	}
	if at := s.srv.log.listening(); !at.IsZero() {
		st.ListeningSec = at.Sub(start).Seconds()
	}
	return st, nil
}

// readFirst reads secret 0 and checks its value. A 401 (a token the restarted server no longer
// takes) fetches a new token, and the caller tries again.
func (s *scaleRun) readFirst(ctx context.Context, hc *http.Client) error {
	host, u := s.lay.place(0, false)
	u.Host = host
	body, err := s.get(ctx, hc, u.String())
	if err != nil {
		if strings.HasPrefix(err.Error(), "status 401") {
			if tok, terr := fetchToken(ctx, s.hc, s.server(), s.admin, s.cfg.Scope); terr == nil {
				s.token = tok
			}
		}
		return err
	}
	var bundle struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(body, &bundle) != nil || len(bundle.Value) != s.cfg.ValueSize {
		return errors.New("reading secret 0: the reply does not carry the written value")
	}
	return nil
}
