package test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom/strongroom/internal/testenv"
)

// The API listener refuses TLS below 1.2, and 1.2 too when tls.min_version is 1.3.
func TestTLSMinimumVersion(t *testing.T) {
	dial := func(srv *testenv.Server, max uint16) error {
		pem, err := os.ReadFile(filepath.Join(srv.DataDir, "tls", "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c, err := tls.Dial("tcp", srv.URL[len("https://"):], &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: max})
		if err == nil {
			c.Close()
		}
		return err
	}
	def := testenv.Start(t, nil)
	for _, c := range []struct {
		max  uint16
		pass bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		if err := dial(def, c.max); (err == nil) != c.pass {
			t.Errorf("default listener, client at most %s: err %v", tls.VersionName(c.max), err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "strongroom.yaml")
	if err := os.WriteFile(cfg, []byte("tls:\n  min_version: \"1.3\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	strict := testenv.Start(t, &testenv.Options{Extra: []string{"--config", cfg}})
	if err := dial(strict, tls.VersionTLS12); err == nil {
		t.Error("min_version 1.3: a TLS 1.2 client was accepted")
	}
	if err := dial(strict, tls.VersionTLS13); err != nil {
		t.Errorf("min_version 1.3: a TLS 1.3 client was refused: %v", err)
	}
}
