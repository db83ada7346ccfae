package app

import (
	"net"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
)

// Port 0 binds a free port, and the listen address and a port-0 public URL then name it; other
// public URLs are left alone.
func TestListen_PortZeroReportsTheBoundPort(t *testing.T) {
	cases := []struct {
		name, listen, public string
		publicTakesPort      bool
	}{
		{"default public URL", "127.0.0.1:0", "https://localhost:0", true},
		{"explicit public URL", "127.0.0.1:0", "https://vault.example.test", false},
		{"explicit public port", "127.0.0.1:0", "https://localhost:8443", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Config{Listen: c.listen, PublicURL: c.public}
			ln, err := listen(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			if port == "0" || cfg.Listen != "127.0.0.1:"+port {
				t.Fatalf("Listen = %q, bound %s", cfg.Listen, ln.Addr())
			}
			want := c.public
			if c.publicTakesPort {
				want = "https://localhost:" + port
			}
			if cfg.PublicURL != want {
				t.Fatalf("PublicURL = %q, want %q", cfg.PublicURL, want)
			}
		})
	}
	t.Run("port in use", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		cfg := config.Config{Listen: held.Addr().String(), PublicURL: "https://localhost:1"}
		if ln, err := listen(&cfg); err == nil || !strings.Contains(err.Error(), "listening on") {
			if ln != nil {
				ln.Close()
			}
			t.Fatalf("listen on a held port: %v", err)
		}
	})
}
