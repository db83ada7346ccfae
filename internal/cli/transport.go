package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// newHTTPClient returns the one HTTP client every SDK client and credential shares. It trusts the
// system roots plus caPEM (the server's own CA, if any) and dials localhost and *.localhost on the
// loopback address, so {vault}.vault.localhost works without /etc/hosts entries.
func newHTTPClient(caPEM []byte) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		// Some platforms have no readable system pool; the server's CA alone is still useful.
		roots = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("reading ca certificate: no PEM certificates found")
	}
	base, _ := http.DefaultTransport.(*http.Transport)
	var tr *http.Transport
	if base != nil {
		tr = base.Clone()
	} else {
		tr = &http.Transport{}
	}
	tr.Proxy = proxyExceptLocalhost
	tr.DialContext = dialLocalhost
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.TLSHandshakeTimeout = 15 * time.Second
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// dialLocalhost dials like net.Dialer but sends localhost and *.localhost to 127.0.0.1: many
// resolvers (this project's CI included) do not resolve *.localhost names.
func dialLocalhost(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, network, loopbackAddr(addr))
}

// proxyExceptLocalhost honours the proxy environment variables except for localhost names, which
// dialLocalhost serves directly (Go's own exception covers only the bare name "localhost").
func proxyExceptLocalhost(req *http.Request) (*url.URL, error) {
	if isLocalhost(req.URL.Hostname()) {
		return nil, nil
	}
	return http.ProxyFromEnvironment(req)
}

// isLocalhost reports whether host is localhost or a name under .localhost.
func isLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// loopbackAddr rewrites host:port to 127.0.0.1:port when host is localhost or ends in .localhost.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if isLocalhost(host) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
