package pki

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
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ServerOptions say which certificate the HTTPS listener serves.
type ServerOptions struct {
	// CertFile and KeyFile are the operator's PEM chain and key; when CertFile is set they are
	// served as they are and no local CA is made.
	CertFile, KeyFile string
	// Dir holds the local CA and the certificate it issues (the data folder's tls folder).
	Dir string
	// DNSSuffix and PublicURL name what a local certificate covers: vaults at *.DNSSuffix and
	// the public URL's host, besides localhost and the loopback addresses.
	DNSSuffix, PublicURL string
}

// ServerCertificate is the HTTPS listener's certificate: the operator's (CertFile, KeyFile)
// when given, else one issued by the local CA in o.Dir (ensureTLS).
func ServerCertificate(o ServerOptions, log *slog.Logger) (tls.Certificate, error) {
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("loading tls.cert_file and tls.key_file: %w", err)
		}
		return pair, nil
	}
	return ensureTLS(o.Dir, localNames(o.DNSSuffix, o.PublicURL), log)
}

// tlsNames are the names a local certificate carries and its CA is constrained to.
type tlsNames struct {
	dns []string // SANs of the server certificate
	ips []net.IP
	// permitted are the DNS name constraints of a new CA: each covers itself and its subdomains;
	// excluded takes subtrees back out (".host": the public host's subdomains).
	permitted, excluded []string
}

// localNames covers localhost, the loopback addresses, the vault DNS suffix and the public URL's
// host.
func localNames(dnsSuffix, publicURL string) tlsNames {
	dnsSuffix = strings.ToLower(strings.TrimSuffix(dnsSuffix, ".")) // DNS names compare case-blind
	n := tlsNames{
		dns:       []string{"localhost", "*." + dnsSuffix, dnsSuffix},
		ips:       []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		permitted: []string{"localhost", dnsSuffix},
	}
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		host := strings.ToLower(u.Hostname())
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsLoopback() {
				n.ips = append(n.ips, ip)
			}
		} else if !slices.Contains(n.dns, host) && host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			n.dns = append(n.dns, host)
			n.permitted = append(n.permitted, host)
			// The public host alone, not its subdomains (it may be an organization's apex),
			// unless the vault suffix lies under it.
			if !strings.HasSuffix(strings.ToLower(dnsSuffix), "."+host) {
				n.excluded = append(n.excluded, "."+host)
			}
		}
	}
	return n
}

// caConstraints limits a new local CA to names: a reader of the data folder who takes its key
// can then impersonate only what the server's own key (kept beside it) already serves, never
// another site to a client that trusts ca.pem.
func caConstraints(names tlsNames) func(*x509.Certificate) {
	return func(tmpl *x509.Certificate) {
		LoopbackConstraints(names.permitted...)(tmpl)
		tmpl.ExcludedDNSDomains = names.excluded
		for _, ip := range names.ips {
			if !ip.IsLoopback() {
				bits := 8 * len(ip.To16())
				if ip4 := ip.To4(); ip4 != nil {
					ip, bits = ip4, 32
				}
				tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			}
		}
	}
}

// ensureTLS loads <dir>/server.pem and server-key.pem, creating a name-constrained CA (ca.pem,
// ca-key.pem) and a server certificate signed by it on first start, and re-issuing the server
// certificate when it no longer covers the configured names or is near expiry. Keys are
// written with mode 0600. The CA key stays in the folder so that the server can re-issue its
// certificate by itself; its name constraints make it worth no more than server-key.pem.
func ensureTLS(dir string, names tlsNames, log *slog.Logger) (tls.Certificate, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("creating tls folder: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, caConstraints(names))
	if err != nil {
		return tls.Certificate{}, err
	}
	if len(caCert.PermittedDNSDomains) == 0 {
		log.Warn("the local CA has no name constraints: anyone who reads its key can make certificates for any site that clients trusting its ca.pem accept. Stop the server, delete the tls folder and start again to make a constrained CA (then give clients the new ca.pem), or supply your own certificate with --tls-cert-file", "ca", filepath.Join(dir, "ca.pem"))
	}
	dnsNames := names.dns
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil && covers(leaf, names) && time.Until(leaf.NotAfter) > 30*24*time.Hour && leaf.CheckSignatureFrom(caCert) == nil {
			return pair, nil
		}
	}
	if err := permits(caCert, names); err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: Serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"Strongroom"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
		IPAddresses:  names.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing server certificate: %w", err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := writePEM(keyPath, "EC PRIVATE KEY", kb, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// covers reports whether c names every DNS name and address of names: a changed dns_suffix or
// public URL makes the kept CA issue a new certificate at the next start.
func covers(c *x509.Certificate, names tlsNames) bool {
	for _, n := range names.dns {
		if !slices.ContainsFunc(c.DNSNames, func(have string) bool { return strings.EqualFold(have, n) }) {
			return false
		}
	}
	for _, ip := range names.ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// permits checks that a certificate for names would chain to ca under its name constraints
// (x509's rules: a permitted "d" covers d and its subdomains, an excluded ".d" d's subdomains).
// A CA made for one dns_suffix covers a new suffix under localhost or another name it permits;
// any other suffix needs a new CA, which clients must be given, so the server refuses to start
// rather than silently replacing the CA its clients trust.
func permits(ca *x509.Certificate, names tlsNames) error {
	if len(ca.PermittedDNSDomains) == 0 {
		return nil // an unconstrained CA from before constraints (see the warning)
	}
	for _, n := range names.dns {
		n = strings.ToLower(strings.TrimPrefix(n, "*."))
		ok := slices.ContainsFunc(ca.PermittedDNSDomains, func(p string) bool { return inDomain(n, p) })
		if ok && slices.ContainsFunc(ca.ExcludedDNSDomains, func(p string) bool { return inDomain(n, p) }) {
			ok = false
		}
		if !ok {
			return fmt.Errorf("the local CA (tls/ca.pem) is limited to %s and cannot certify %q (was dns_suffix or public_url changed?): %s", strings.Join(ca.PermittedDNSDomains, ", "), n, newCAHint)
		}
	}
	for _, ip := range names.ips {
		if len(ca.PermittedIPRanges) > 0 && !slices.ContainsFunc(ca.PermittedIPRanges, func(r *net.IPNet) bool { return r.Contains(ip) }) {
			return fmt.Errorf("the local CA (tls/ca.pem) cannot certify the address %s (was public_url changed?): %s", ip, newCAHint)
		}
	}
	return nil
}

const newCAHint = "delete the data folder's tls folder to make a new CA (then give clients the new ca.pem), or supply a certificate with --tls-cert-file"

// inDomain reports whether name lies in the name-constraint subtree c: ".d" is d's subdomains,
// "d" is d and its subdomains.
func inDomain(name, c string) bool {
	c = strings.ToLower(c)
	if strings.HasPrefix(c, ".") {
		return strings.HasSuffix(name, c)
	}
	return name == c || strings.HasSuffix(name, "."+c)
}

func loadOrCreateCA(dir string, constrain func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	cb, cerr := os.ReadFile(certPath)
	kb, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		cblock, _ := pem.Decode(cb)
		kblock, _ := pem.Decode(kb)
		if cblock == nil || kblock == nil {
			return nil, nil, fmt.Errorf("reading CA in %s: not PEM", dir)
		}
		cert, err := x509.ParseCertificate(cblock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing CA certificate: %w", err)
		}
		key, err := x509.ParseECPrivateKey(kblock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing CA key: %w", err)
		}
		return cert, key, nil
	}
	if !errors.Is(cerr, fs.ErrNotExist) && cerr != nil {
		return nil, nil, fmt.Errorf("reading CA certificate: %w", cerr)
	}
	cert, der, key, err := NewCA(pkix.Name{CommonName: "Strongroom local CA", Organization: []string{"Strongroom"}}, constrain)
	if err != nil {
		return nil, nil, err
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := writePEM(keyPath, "EC PRIVATE KEY", kder, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// writePEM writes atomically (temp file, fsync, rename) so a crash never leaves half a key.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
