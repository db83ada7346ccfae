package bench_test

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/bench"
)

// startTrivial runs a trivial server on a free loopback port and returns a config aimed at it.
func startTrivial(t *testing.T) bench.Config {
	t.Helper()
	dir := t.TempDir()
	srv, err := bench.NewTrivialServer(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cfg := bench.DefaultConfig()
	cfg.Server = "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg.CAFile = filepath.Join(dir, "ca.pem")
	cfg.AdminFile = filepath.Join(dir, "admin.json")
	cfg.Workers, cfg.Duration, cfg.Warmup = 2, 300*time.Millisecond, 50*time.Millisecond
	cfg.MaxOps, cfg.Secrets = 200, 20
	return cfg
}

func TestRun_TrivialServer(t *testing.T) {
	for _, mode := range []string{bench.ModeRead, bench.ModeWrite, bench.ModeMix} {
		t.Run(mode, func(t *testing.T) {
			cfg := startTrivial(t)
			cfg.Mode = mode
			cfg.MixRead = 0.5
			cfg.ServerPID = os.Getpid() // the server runs in this process; exercises /proc sampling
			res, err := bench.Run(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Ops <= 0 || res.Ops > cfg.MaxOps {
				t.Errorf("Ops = %d, want 1..%d", res.Ops, cfg.MaxOps)
			}
			if res.Errors != 0 {
				t.Errorf("Errors = %d (%v, first %q), want 0", res.Errors, res.ErrorKinds, res.FirstError)
			}
			if res.OpsPerSec <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.WindowSec <= 0 {
				t.Errorf("implausible stats: %+v", res.OpStats)
			}
			if (mode == bench.ModeMix) != (res.Read != nil && res.Write != nil) {
				t.Errorf("per-op split present = %v for mode %s", res.Read != nil, mode)
			}
			if mode == bench.ModeMix && res.Read.Ops+res.Write.Ops != res.Ops {
				t.Errorf("read %d + write %d != ops %d", res.Read.Ops, res.Write.Ops, res.Ops)
			}
		})
	}
}

func TestRun_CountsErrors(t *testing.T) {
	cfg := startTrivial(t)
	cfg.Populate = false // nothing to read: every read is a 404
	res, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Ops != 0 || res.Errors == 0 || res.ErrorKinds["read 404"] != res.Errors {
		t.Fatalf("Ops = %d, Errors = %d, kinds %v; want only read 404 errors", res.Ops, res.Errors, res.ErrorKinds)
	}
	if res.FirstError == "" {
		t.Error("FirstError is empty")
	}
	// The op cap ended the window; its length comes from the last completion, errors included.
	if res.WindowSec < 0.001 || res.WindowSec > cfg.Duration.Seconds() {
		t.Errorf("WindowSec = %g, want within (0.001, %g]", res.WindowSec, cfg.Duration.Seconds())
	}
}

func TestRun_SetupErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*bench.Config)
	}{
		{"missing ca file", func(c *bench.Config) { c.CAFile = filepath.Join(t.TempDir(), "none.pem") }},
		{"missing admin file", func(c *bench.Config) { c.AdminFile = filepath.Join(t.TempDir(), "none.json") }},
		{"server pid not running", func(c *bench.Config) { c.ServerPID = 1 << 30 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := startTrivial(t)
			tt.mutate(&cfg)
			if _, err := bench.Run(t.Context(), cfg); err == nil {
				t.Fatal("Run succeeded, want an error")
			}
		})
	}
}

// With --key-vault-headers the trivial server answers secret reads with Key Vault's header set;
// without it, with Content-Type only.
func TestTrivialServer_KeyVaultHeaders(t *testing.T) {
	for _, kv := range []bool{false, true} {
		srv, err := bench.NewTrivialServer(t.TempDir(), kv)
		if err != nil {
			t.Fatal(err)
		}
		call := func(method, body string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, "https://benchkv.vault.localhost:9443/secrets/s1?api-version=7.4", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer x")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			return rec
		}
		if rec := call("PUT", `{"value":"v"}`); rec.Code != 200 {
			t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
		}
		rec := call("GET", "")
		got := rec.Header().Get("X-Ms-Keyvault-Region") != "" && rec.Header().Get("Strict-Transport-Security") != ""
		if rec.Code != 200 || got != kv {
			t.Fatalf("key vault headers %t: status %d, headers %v", kv, rec.Code, rec.Header())
		}
	}
}
