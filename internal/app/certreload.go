package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strongroom/strongroom/internal/config"
)

// certSource is the HTTPS listener's certificate, swapped atomically on reload: the listener
// takes it per handshake through tls.Config.GetCertificate, so a new certificate reaches new
// connections without closing the listener, and connections already made keep theirs.
type certSource struct {
	cur  atomic.Pointer[tls.Certificate]
	load func() (tls.Certificate, error)
	log  *slog.Logger
}

// newCertSource loads the first certificate; a failure here stops the start.
func newCertSource(load func() (tls.Certificate, error), log *slog.Logger) (*certSource, error) {
	c := &certSource{load: load, log: log}
	cert, err := c.loadChecked()
	if err != nil {
		return nil, err
	}
	c.cur.Store(&cert)
	return c, nil
}

// serverCertSource is the listener's certificate source for cfg (serverCertificate, re-read on
// every reload: the operator's files, or the local CA's certificate, re-issued if due).
func serverCertSource(cfg config.Config, log *slog.Logger) (*certSource, error) {
	c, err := newCertSource(func() (tls.Certificate, error) { return serverCertificate(cfg, log) }, log)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.CertFile != "" {
		warnUncovered(c.cur.Load().Leaf, cfg, log)
	}
	return c, nil
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (c *certSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// loadChecked loads a certificate and parses its leaf, refusing one that has expired or is not
// yet valid (serving it would fail every client).
func (c *certSource) loadChecked() (tls.Certificate, error) {
	cert, err := c.load()
	if err != nil {
		return tls.Certificate{}, err
	}
	if len(cert.Certificate) == 0 {
		return tls.Certificate{}, errors.New("the certificate file holds no certificate")
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("parsing the server certificate: %w", err)
		}
	}
	if now := time.Now(); now.After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("the server certificate (serial %x) is valid only from %s to %s",
			cert.Leaf.SerialNumber, cert.Leaf.NotBefore.UTC().Format(time.RFC3339), cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// Reload loads the certificate again and swaps it in; on any error the current one stays and
// the error is returned (it names files and what is wrong with them, never key bytes).
func (c *certSource) Reload() error {
	cert, err := c.loadChecked()
	if err != nil {
		return err
	}
	old := c.cur.Swap(&cert)
	if old.Leaf == nil || !old.Leaf.Equal(cert.Leaf) {
		c.log.Info("TLS certificate reloaded", "serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber),
			"subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	} else {
		c.log.Info("TLS certificate reloaded: unchanged", "serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber))
	}
	return nil
}

// reloadOnHangup reloads c on every SIGHUP until ctx ends. Subscribing also keeps SIGHUP's
// default action (exit) from stopping the server.
func (c *certSource) reloadOnHangup(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := c.Reload(); err != nil {
					c.log.Error("TLS certificate reload failed: still serving the previous certificate", "err", err)
				}
			}
		}
	}()
}

// warnUncovered logs the names an operator certificate does not cover: clients of those names
// fail verification (vaults at *.<dns_suffix>, the public URL's host).
func warnUncovered(leaf *x509.Certificate, cfg config.Config, log *slog.Logger) {
	if leaf == nil {
		return
	}
	var missing []string
	check := func(probe, label string) {
		if leaf.VerifyHostname(probe) != nil {
			missing = append(missing, label)
		}
	}
	check("myvault."+cfg.DNSSuffix, "*."+cfg.DNSSuffix)
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		check(u.Hostname(), u.Hostname())
	}
	if len(missing) > 0 {
		log.Warn("tls.cert_file does not cover these names; clients using them will fail verification", "names", strings.Join(missing, ", "))
	}
}
