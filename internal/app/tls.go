package app

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/pki"
)

// serverCertificate is the HTTPS listener's certificate (pki.ServerCertificate): the operator's
// (cfg.TLS) when given, else one from the local CA in <data-dir>/tls.
func serverCertificate(cfg config.Config, log *slog.Logger) (tls.Certificate, error) {
	return pki.ServerCertificate(pki.ServerOptions{
		CertFile:  cfg.TLS.CertFile,
		KeyFile:   cfg.TLS.KeyFile,
		Dir:       filepath.Join(cfg.DataDir, "tls"),
		DNSSuffix: cfg.DNSSuffix,
		PublicURL: cfg.PublicURL,
	}, log)
}
