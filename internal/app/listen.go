package app

import (
	"fmt"
	"net"
	"net/url"

	"github.com/strongroom/strongroom/internal/config"
)

// listen binds cfg.Listen before anything reads the address. Port 0 takes a free port (tests
// start servers this way, so no port is picked and released first); cfg.Listen then names the
// bound port, and so does a public URL whose port is 0, which is the default public URL for
// port 0. The "strongroom listening" log line reports both.
func listen(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cfg.Listen = net.JoinHostPort(host, port)
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Port() == "0" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
		cfg.PublicURL = u.String()
	}
	return ln, nil
}
