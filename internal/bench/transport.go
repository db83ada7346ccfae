package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// loadCA reads a PEM bundle into a pool.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading ca file: no PEM certificates in %s", path)
	}
	return pool, nil
}

// dialLocalhost dials like net.Dialer but sends localhost and every *.localhost name to
// 127.0.0.1, since this machine's resolver does not know {vault}.vault.localhost.
func dialLocalhost(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, network, mapLocalhost(addr))
}

// mapLocalhost rewrites host:port to 127.0.0.1:port when host is localhost or *.localhost.
func mapLocalhost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// newTransport returns a transport that keeps exactly one connection to each host alive, so a
// worker owning one transport owns one connection, as in the perf anchors' load generator. TLS
// verifies against roots; the ServerName is the request's host (the vault host on the data plane).
func newTransport(roots *x509.CertPool, h2 bool) *http.Transport {
	t := &http.Transport{
		DialContext:         dialLocalhost,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		// Bounds setup and populate too, which run before the window's watchdog exists.
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          1,
		MaxIdleConnsPerHost:   1,
		MaxConnsPerHost:       1,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
	}
	// Say the protocols explicitly: a custom dialer already keeps HTTP/2 off, but intent is clearer.
	var p http.Protocols
	p.SetHTTP1(!h2)
	p.SetHTTP2(h2)
	t.Protocols = &p
	return t
}
