package pki

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
)

// loopbackRanges are the address constraints of a local CA: 127.0.0.0/8 and ::1.
func loopbackRanges() []*net.IPNet {
	return []*net.IPNet{
		{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
}

// LoopbackConstraints limits a new CA to the DNS subtrees domains (each covers itself and its
// subdomains) and the loopback addresses, marked critical: whoever takes the CA's key can then
// make certificates only for those names, never for another site a client trusting the CA visits.
func LoopbackConstraints(domains ...string) func(*x509.Certificate) {
	return func(tmpl *x509.Certificate) {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = normalizeDomains(domains)
		tmpl.PermittedIPRanges = loopbackRanges()
	}
}

// HasLoopbackConstraints reports whether ca carries exactly the constraints
// LoopbackConstraints(domains...) gives: critical, the same DNS subtrees (case-blind, in any
// order), the loopback ranges and no other addresses, nothing excluded. A CA made before
// constraints, or for other names, answers false and should be made again.
func HasLoopbackConstraints(ca *x509.Certificate, domains ...string) bool {
	if !ca.PermittedDNSDomainsCritical || len(ca.ExcludedDNSDomains) > 0 || len(ca.ExcludedIPRanges) > 0 ||
		len(ca.PermittedEmailAddresses) > 0 || len(ca.PermittedURIDomains) > 0 {
		return false
	}
	if !slices.Equal(normalizeDomains(ca.PermittedDNSDomains), normalizeDomains(domains)) {
		return false
	}
	want := loopbackRanges()
	return len(ca.PermittedIPRanges) == len(want) && !slices.ContainsFunc(want, func(w *net.IPNet) bool {
		return !slices.ContainsFunc(ca.PermittedIPRanges, func(r *net.IPNet) bool { return r.String() == w.String() })
	})
}

// normalizeDomains lower-cases, drops trailing dots and empties, sorts and deduplicates.
func normalizeDomains(domains []string) []string {
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		if d = strings.ToLower(strings.TrimSuffix(d, ".")); d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
