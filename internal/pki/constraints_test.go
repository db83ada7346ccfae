package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
)

func TestHasLoopbackConstraints(t *testing.T) {
	tests := []struct {
		name   string
		amend  func(*x509.Certificate)
		domain []string
		want   bool
	}{
		{"the same domains", LoopbackConstraints("vault.test", "localhost"), []string{"localhost", "vault.test"}, true},
		{"case and a trailing dot", LoopbackConstraints("Vault.Test.", "localhost"), []string{"vault.test", "LOCALHOST"}, true},
		{"no constraints", func(*x509.Certificate) {}, []string{"vault.test", "localhost"}, false},
		{"another suffix", LoopbackConstraints("vault.old", "localhost"), []string{"vault.test", "localhost"}, false},
		{"one more domain", LoopbackConstraints("vault.test", "localhost", "example.com"), []string{"vault.test", "localhost"}, false},
		{"not critical", func(c *x509.Certificate) {
			LoopbackConstraints("vault.test", "localhost")(c)
			c.PermittedDNSDomainsCritical = false
		}, []string{"vault.test", "localhost"}, false},
		{"another address", func(c *x509.Certificate) {
			LoopbackConstraints("vault.test", "localhost")(c)
			c.PermittedIPRanges = append(c.PermittedIPRanges, &net.IPNet{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)})
		}, []string{"vault.test", "localhost"}, false},
		{"no addresses", func(c *x509.Certificate) {
			LoopbackConstraints("vault.test", "localhost")(c)
			c.PermittedIPRanges = nil
		}, []string{"vault.test", "localhost"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, _, _, err := NewCA(pkix.Name{CommonName: "test"}, tt.amend)
			if err != nil {
				t.Fatal(err)
			}
			if got := HasLoopbackConstraints(ca, tt.domain...); got != tt.want {
				t.Fatalf("HasLoopbackConstraints = %v, want %v (permitted %v, ranges %v)", got, tt.want, ca.PermittedDNSDomains, ca.PermittedIPRanges)
			}
		})
	}
}
