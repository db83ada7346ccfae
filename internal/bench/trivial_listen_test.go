package bench_test

import (
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/bench"
)

// The trivial server accepts any token: it refuses every address but loopback.
func TestTrivialServer_ListenLoopbackOnly(t *testing.T) {
	srv, err := bench.NewTrivialServer(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"[::1]:0", true},
		{"localhost:0", true},
		{":0", false},
		{"0.0.0.0:0", false},
		{"[::]:0", false},
		{"192.0.2.1:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false}, // no port
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			ln, err := srv.Listen(c.addr)
			if ln != nil {
				ln.Close()
			}
			if c.ok && err != nil && !strings.Contains(err.Error(), "cannot assign") {
				t.Fatalf("Listen(%q) = %v, want a listener", c.addr, err)
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "listen address")) {
				t.Fatalf("Listen(%q) = %v, want a refusal", c.addr, err)
			}
		})
	}
}

// The product binary's `strongroom bench` has no trivial-server subcommand: it lives in its own
// harness binary (./internal/bench/trivialserver).
func TestBenchCommand_HasNoTrivialServer(t *testing.T) {
	for _, c := range bench.NewCommand().Commands() {
		if strings.Contains(c.Name(), "trivial") {
			t.Fatalf("`strongroom bench` has a %q subcommand", c.Name())
		}
	}
}
