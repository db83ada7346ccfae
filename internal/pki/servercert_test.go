package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testOptions are the server's defaults (vaults under vault.localhost) with a fresh folder.
func testOptions(t *testing.T, publicURL string) ServerOptions {
	t.Helper()
	return ServerOptions{Dir: filepath.Join(t.TempDir(), "tls"), DNSSuffix: "vault.localhost", PublicURL: publicURL}
}

// The local CA is name-constrained: its key (which sits in the data folder) signs certificates
// that clients trusting ca.pem accept for the server's own names only, never for another site.
func TestEnsureTLS_LocalCAIsNameConstrained(t *testing.T) {
	o := testOptions(t, "https://vault.example.test:8443")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pair, err := ServerCertificate(o, log)
	if err != nil {
		t.Fatal(err)
	}
	dir := o.Dir
	ca := readPEMCert(t, filepath.Join(dir, "ca.pem"))
	kb, _ := pem.Decode(mustRead(t, filepath.Join(dir, "ca-key.pem")))
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	for _, name := range []string{"localhost", "kv1.vault.localhost", "vault.example.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("the server certificate does not verify for %s: %v", name, err)
		}
	}
	tests := []struct {
		name string
		dns  []string
		ips  []net.IP
	}{
		{"Entra ID's login host", []string{"login.microsoftonline.com"}, nil},
		{"Key Vault's suffix", []string{"*.vault.azure.net"}, nil},
		{"a sibling of the public host", []string{"example.test"}, nil},
		{"a subdomain of the public host", []string{"sso.vault.example.test"}, nil},
		{"a non-loopback address", nil, []net.IP{net.ParseIP("10.1.2.3")}},
		{"an allowed name with a foreign one", []string{"localhost", "login.microsoftonline.com"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forged, _ := signLeaf(t, ca, caKey, tc.dns, tc.ips)
			if _, err := forged.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
				t.Fatalf("a certificate for %v %v signed with the local CA key verifies", tc.dns, tc.ips)
			}
		})
	}
}

// An operator-supplied certificate is served as it is, and no local CA is made.
func TestServerCertificate_OperatorSupplied(t *testing.T) {
	o := testOptions(t, "")
	other := t.TempDir()
	ca, key := selfSignedCA(t)
	leaf, leafKey := signLeaf(t, ca, key, []string{"localhost"}, nil)
	certFile, keyFile := filepath.Join(other, "cert.pem"), filepath.Join(other, "key.pem")
	writeCertAndKey(t, certFile, keyFile, leaf, leafKey)
	o.CertFile, o.KeyFile = certFile, keyFile
	pair, err := ServerCertificate(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := x509.ParseCertificate(pair.Certificate[0]); !got.Equal(leaf) {
		t.Fatal("the server does not serve the operator's certificate")
	}
	if _, err := os.Stat(o.Dir); err == nil {
		t.Fatal("a local CA folder was made although a certificate was supplied")
	}
}

func signLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dns []string, ips []net.IP) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "forged"},
		DNSNames: dns, IPAddresses: ips, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func selfSignedCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func writeCertAndKey(t *testing.T, certFile, keyFile string, c *x509.Certificate, k *ecdsa.PrivateKey) {
	t.Helper()
	kb, _ := x509.MarshalECPrivateKey(k)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(mustRead(t, path))
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
