package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/pki"
)

// The cache endpoint's certificate: a CA made once per data directory (its certificate is what
// applications trust, <data-dir>/cache-ca.pem; its key stays in the directory with mode 0600),
// and a leaf made at every start for the vault names under the suffix and the loopback names.
// The CA is name-constrained to the suffix, localhost and the loopback addresses, which is all
// the leaf names: applications trust it for every connection they make (SSL_CERT_FILE,
// NODE_EXTRA_CA_CERTS), so a reader of cache-ca.key must not be able to certify any other site.
const (
	cacheCAFile    = "cache-ca.pem"
	cacheCAKeyFile = "cache-ca.key"
)

// CacheCAPath is the CA certificate applications trust to use the cache in dataDir.
func CacheCAPath(dataDir string) string { return filepath.Join(dataDir, cacheCAFile) }

// cacheCertificate returns the cache's serving certificate for vault names under suffix; a
// CA it has to replace is reported on out.
func cacheCertificate(dataDir, suffix string, out io.Writer) (tls.Certificate, error) {
	ca, caKey, err := loadOrCreateCacheCA(dataDir, suffix, out)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making the cache key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "*." + suffix},
		DNSNames:     []string{"*." + suffix, suffix, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(397 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing the cache certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}, nil
}

// cacheCADomains are the DNS subtrees the cache CA may certify: the leaf's names.
func cacheCADomains(suffix string) []string { return []string{suffix, "localhost"} }

// loadOrCreateCacheCA returns the cache CA in dir, making it when there is none, or when the
// one there is not constrained to exactly suffix, localhost and the loopback addresses (a CA
// from before constraints, or from another --cache-dns-suffix).
func loadOrCreateCacheCA(dir, suffix string, out io.Writer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, cacheCAFile))
	keyPEM, keyErr := os.ReadFile(filepath.Join(dir, cacheCAKeyFile))
	if certErr == nil && keyErr == nil {
		cert, key, err := parseCacheCA(certPEM, keyPEM)
		if err != nil {
			return nil, nil, err
		}
		var why string
		switch {
		case !key.PublicKey.Equal(cert.PublicKey):
			why = "its key is not the certificate's"
		case !pki.HasLoopbackConstraints(cert, cacheCADomains(suffix)...):
			why = "it is not limited to " + suffix + ", localhost and the loopback addresses"
		default:
			return cert, key, nil
		}
		fmt.Fprintf(out, "replacing the secrets cache CA %s (%s): applications must load the new one\n", filepath.Join(dir, cacheCAFile), why)
	} else if !errors.Is(certErr, os.ErrNotExist) && certErr != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", cacheCAFile, certErr)
	}
	cert, der, key, err := pki.NewCA(pkix.Name{CommonName: "Strongroom agent cache CA"}, pki.LoopbackConstraints(cacheCADomains(suffix)...))
	if err != nil {
		return nil, nil, fmt.Errorf("making the cache CA: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the cache CA key: %w", err)
	}
	// The key first: a crash between the two writes leaves a certificate that does not match
	// it, and the pair is made again at the next start.
	if err := writePrivate(filepath.Join(dir, cacheCAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); err != nil {
		return nil, nil, err
	}
	if err := writePrivate(filepath.Join(dir, cacheCAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// parseCacheCA reads the CA certificate and key files.
func parseCacheCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("the cache CA files are not PEM: remove cache-ca.pem and cache-ca.key to make new ones")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", cacheCAFile, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", cacheCAKeyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not an ECDSA key", cacheCAKeyFile)
	}
	return cert, key, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
