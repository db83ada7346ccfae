package app

import (
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
)

// The configuration reaches the certificate: the local CA's files land in <data-dir>/tls and the
// certificate covers the vault suffix and the public host. (pki tests the certificate itself.)
func TestServerCertificate_FromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "https://vault.example.test:8443"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pair, err := serverCertificate(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"*." + cfg.DNSSuffix, "vault.example.test"} {
		if !slices.Contains(leaf.DNSNames, n) {
			t.Errorf("the certificate does not cover %s: %v", n, leaf.DNSNames)
		}
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls", f)); err != nil {
			t.Errorf("tls/%s: %v", f, err)
		}
	}
}

// An operator certificate needs its key: the configuration refuses one without the other.
func TestServerCertificate_CertFileNeedsKeyFile(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TLS = config.TLSConfig{CertFile: filepath.Join(t.TempDir(), "cert.pem")}
	if err := cfg.Validate(); err == nil {
		t.Fatal("tls.cert_file without tls.key_file validated")
	}
}
