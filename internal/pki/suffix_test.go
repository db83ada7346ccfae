package pki

import (
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// The local certificate covers whatever dns_suffix is configured: *.<suffix> and <suffix>, plus
// localhost and the loopback addresses, and it verifies against ca.pem for each of them.
func TestServerCertificate_CoversConfiguredSuffix(t *testing.T) {
	for _, suffix := range []string{"vault.localhost", "kv.localhost", "vault.example.test", "Secrets.Corp.Internal", "kv.strongroom.test."} {
		t.Run(suffix, func(t *testing.T) {
			o := ServerOptions{Dir: filepath.Join(t.TempDir(), "tls"), DNSSuffix: suffix, PublicURL: "https://localhost:8443"}
			leaf := serve(t, o)
			pool := caPool(t, o.Dir)
			want := strings.ToLower(strings.TrimSuffix(suffix, "."))
			for _, name := range []string{"myvault." + want, want, "localhost", "127.0.0.1", "::1"} {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
					t.Errorf("the certificate for suffix %q does not verify for %s: %v", suffix, name, err)
				}
			}
		})
	}
}

// Changing dns_suffix (or public_url) on an existing data folder: the kept CA issues a new
// certificate for the new names when its constraints permit them, the certificate is kept when
// nothing changed, and a name the CA may not certify stops the start with a way out (a new CA
// would break every client that trusts the old ca.pem, so it is not made behind their back).
func TestServerCertificate_SuffixChangeOnExistingFolder(t *testing.T) {
	tests := []struct {
		name                 string
		fromSuffix, fromURL  string
		toSuffix, toURL      string
		wantNewLeaf, wantErr bool
	}{
		{"unchanged keeps the certificate", "vault.localhost", "https://localhost:8443", "vault.localhost", "https://localhost:8443", false, false},
		{"unchanged in another case", "vault.localhost", "https://localhost:8443", "VAULT.localhost", "https://localhost:8443", false, false},
		{"another suffix under localhost", "vault.localhost", "https://localhost:8443", "kv.localhost", "https://localhost:8443", true, false},
		{"a subdomain of the old suffix", "vault.example.test", "https://localhost:8443", "eu.vault.example.test", "https://localhost:8443", true, false},
		{"a suffix outside the CA's names", "vault.localhost", "https://localhost:8443", "vault.example.test", "https://localhost:8443", false, true},
		{"a suffix under the excluded public host", "vault.localhost", "https://sr.example.test:8443", "vault.sr.example.test", "https://sr.example.test:8443", false, true},
		{"a new public address", "vault.localhost", "https://localhost:8443", "vault.localhost", "https://10.1.2.3:8443", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			before := serve(t, ServerOptions{Dir: dir, DNSSuffix: tc.fromSuffix, PublicURL: tc.fromURL})
			ca := readPEMCert(t, filepath.Join(dir, "ca.pem"))
			pair, err := ServerCertificate(ServerOptions{Dir: dir, DNSSuffix: tc.toSuffix, PublicURL: tc.toURL}, discard())
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "delete the data folder's tls folder") {
					t.Fatalf("err = %v, want a refusal that says how to make a new CA", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			after, _ := x509.ParseCertificate(pair.Certificate[0])
			if renewed := after.SerialNumber.Cmp(before.SerialNumber) != 0; renewed != tc.wantNewLeaf {
				t.Fatalf("new certificate = %v, want %v", renewed, tc.wantNewLeaf)
			}
			if !readPEMCert(t, filepath.Join(dir, "ca.pem")).Equal(ca) {
				t.Fatal("the CA was replaced: clients trusting the old ca.pem would break")
			}
			name := "myvault." + strings.ToLower(tc.toSuffix)
			if _, err := after.Verify(x509.VerifyOptions{Roots: caPool(t, dir), DNSName: name}); err != nil {
				t.Fatalf("the certificate does not verify for %s: %v", name, err)
			}
			// The next start keeps what this one issued.
			if again := serve(t, ServerOptions{Dir: dir, DNSSuffix: tc.toSuffix, PublicURL: tc.toURL}); !again.Equal(after) {
				t.Fatal("a second start with the same names issued another certificate")
			}
		})
	}
}

func serve(t *testing.T, o ServerOptions) *x509.Certificate {
	t.Helper()
	pair, err := ServerCertificate(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(dir, "ca.pem")))
	return pool
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
