package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/pki"
)

// A reload swaps in the files' new certificate; a bad file leaves the current one serving and
// is reported without key material.
func TestCertSource_Reload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, firstKey := testLeaf(t, time.Now().Add(time.Hour))
	writeLeaf(t, certFile, keyFile, first, firstKey)
	var logs bytes.Buffer
	src, err := newCertSource(func() (tls.Certificate, error) {
		return pki.ServerCertificate(pki.ServerOptions{CertFile: certFile, KeyFile: keyFile}, nil)
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serving := func() *x509.Certificate {
		c, _ := src.GetCertificate(nil)
		return c.Leaf
	}
	other, otherKey := testLeaf(t, time.Now().Add(time.Hour))
	otherKeyPEM := keyPEM(t, otherKey)
	bad := []struct {
		name      string
		cert, key []byte
	}{
		{"a key that is not the certificate's", certPEM(first), otherKeyPEM},
		{"a certificate that is not PEM", []byte("not a certificate"), keyPEM(t, firstKey)},
		{"a truncated key", certPEM(other), otherKeyPEM[:len(otherKeyPEM)/2]},
		{"the files swapped", otherKeyPEM, certPEM(other)},
		{"an expired certificate", nil, nil}, // filled below
		{"a missing key file", certPEM(other), nil},
	}
	expired, expiredKey := testLeaf(t, time.Now().Add(-time.Minute))
	bad[4].cert, bad[4].key = certPEM(expired), keyPEM(t, expiredKey)
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			writeFile(t, certFile, tc.cert)
			if tc.key == nil {
				os.Remove(keyFile)
			} else {
				writeFile(t, keyFile, tc.key)
			}
			err := src.Reload()
			if err == nil {
				t.Fatal("the reload succeeded")
			}
			if !serving().Equal(first) {
				t.Fatal("a failed reload replaced the certificate being served")
			}
			for _, k := range [][]byte{otherKeyPEM, keyPEM(t, firstKey), keyPEM(t, expiredKey)} {
				if b, _ := pem.Decode(k); strings.Contains(err.Error(), string(b.Bytes)) || strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Fatalf("the error carries key material: %v", err)
				}
			}
		})
	}
	t.Run("a good pair is swapped in", func(t *testing.T) {
		writeLeaf(t, certFile, keyFile, other, otherKey)
		if err := src.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := serving(); !got.Equal(other) {
			t.Fatalf("serving serial %x, want %x", got.SerialNumber, other.SerialNumber)
		}
		if !strings.Contains(logs.String(), "TLS certificate reloaded") {
			t.Fatalf("no reload log line:\n%s", logs.String())
		}
	})
}

func testLeaf(t *testing.T, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
}

func writeLeaf(t *testing.T, certFile, keyFile string, c *x509.Certificate, k *ecdsa.PrivateKey) {
	t.Helper()
	writeFile(t, certFile, certPEM(c))
	writeFile(t, keyFile, keyPEM(t, k))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
