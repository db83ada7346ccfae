// Package pki makes the self-signed certificate authorities of Strongroom's two private PKIs: the
// HTTPS listener's local CA and the cluster CA that signs node certificates (internal/cluster).
// Both are ECDSA P-256, ten years, path length zero. It also picks the listener's certificate
// (servercert.go): the operator's files, or one the name-constrained local CA issues and renews.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// NewCA generates a key and a self-signed CA certificate for subject; each option may amend the
// template (name constraints). It returns the parsed certificate, its DER bytes and the key.
func NewCA(subject pkix.Name, options ...func(*x509.Certificate)) (*x509.Certificate, []byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          Serial(),
		Subject:               subject,
		NotBefore:             time.Now().Add(-time.Hour), // tolerate clock skew between hosts
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	for _, o := range options {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return cert, der, key, nil
}

// Serial returns a random 127-bit certificate serial number.
func Serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("reading randomness: %v", err)) // crypto/rand does not fail on Linux
	}
	return n
}
