package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

func TestNewCA_SignsAndVerifiesItself(t *testing.T) {
	cert, der, key, err := NewCA(pkix.Name{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA || !cert.MaxPathLenZero || cert.Subject.CommonName != "test CA" || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("not a path-length-zero signing CA: %+v", cert)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil || !parsed.Equal(cert) {
		t.Fatalf("DER does not match the certificate: %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("key does not match the certificate")
	}
	if a, b := Serial(), Serial(); a.Cmp(b) == 0 || a.BitLen() > 127 {
		t.Fatalf("serials %v, %v", a, b)
	}
}
