package agent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readCacheCA reads the CA certificate and key cacheCertificate left in dir.
func readCacheCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dir, cacheCAFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, cacheCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := parseCacheCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// signWith makes a server certificate for dns and ips with the CA's key.
func signWith(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "forged"}, DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// The cache CA certifies the cache's own names and nothing else: a certificate for another site
// made with its key does not verify for an application that trusts cache-ca.pem.
func TestCacheCAIsNameConstrained(t *testing.T) {
	dir := t.TempDir()
	pair, err := cacheCertificate(dir, "vault.test", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey := readCacheCA(t, dir)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	for _, name := range []string{"kv1.vault.test", "vault.test", "localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("the cache certificate does not verify for %s: %v", name, err)
		}
	}
	tests := []struct {
		name string
		dns  []string
		ips  []net.IP
	}{
		{"Entra ID's login host", []string{"login.microsoftonline.com"}, nil},
		{"Key Vault's suffix", []string{"*.vault.azure.net"}, nil},
		{"a name ending like the suffix", []string{"evilvault.test"}, nil},
		{"the suffix's parent", []string{"test"}, nil},
		{"a private address", nil, []net.IP{net.ParseIP("10.1.2.3")}},
		{"an IPv6 address", nil, []net.IP{net.ParseIP("2001:db8::1")}},
		{"a cache name with a foreign one", []string{"kv1.vault.test", "example.com"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forged := signWith(t, ca, caKey, tt.dns, tt.ips)
			if _, err := forged.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
				t.Fatalf("a certificate for %v %v made with the cache CA's key verifies", tt.dns, tt.ips)
			}
		})
	}
}

// A CA from before name constraints, or made for another suffix, is replaced at start (and
// said so); one that fits is kept.
func TestCacheCAReplaced(t *testing.T) {
	dir := t.TempDir()
	// An unconstrained CA, as agents made them before.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "Strongroom agent cache CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := writePrivate(filepath.Join(dir, cacheCAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); err != nil {
		t.Fatal(err)
	}
	if err := writePrivate(filepath.Join(dir, cacheCAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		t.Fatal(err)
	}

	prev := der
	steps := []struct {
		name, suffix string
		replaced     bool
	}{
		{"unconstrained", "vault.test", true},
		{"same suffix", "vault.test", false},
		{"same suffix, other case", "Vault.Test", false},
		{"another suffix", "vault.example.org", true},
		{"a suffix under the old one", "kv.vault.example.org", true},
	}
	for _, st := range steps {
		var out bytes.Buffer
		if _, err := cacheCertificate(dir, st.suffix, &out); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		ca, caKey := readCacheCA(t, dir)
		if replaced := !bytes.Equal(ca.Raw, prev); replaced != st.replaced {
			t.Fatalf("%s: replaced %v, want %v", st.name, replaced, st.replaced)
		}
		if logged := strings.Contains(out.String(), "replacing the secrets cache CA"); logged != st.replaced {
			t.Fatalf("%s: output %q", st.name, out.String())
		}
		if !caKey.PublicKey.Equal(ca.PublicKey) {
			t.Fatalf("%s: the CA key does not match its certificate", st.name)
		}
		if want := strings.ToLower(st.suffix); !ca.PermittedDNSDomainsCritical || !strings.Contains(strings.Join(ca.PermittedDNSDomains, " "), want) {
			t.Fatalf("%s: the CA permits %v", st.name, ca.PermittedDNSDomains)
		}
		prev = ca.Raw
	}
}
