package testenv

import "testing"

func TestListeningPort(t *testing.T) {
	cases := []struct {
		name, stderr string
		want         int
	}{
		{"line", `time=2026-01-01T00:00:00Z level=INFO msg="strongroom listening" listen=127.0.0.1:40123 public_url=https://localhost:40123 seal=file` + "\n", 40123},
		{"ipv6", `level=INFO msg="strongroom listening" listen=[::1]:8443 public_url=https://localhost:8443`, 8443},
		{"after other lines", "level=INFO msg=\"opening store\"\nlevel=INFO msg=\"strongroom listening\" listen=127.0.0.1:9\n", 9},
		{"not yet", `level=INFO msg="opening store" listen=127.0.0.1:1`, 0},
		{"port zero", `level=INFO msg="strongroom listening" listen=127.0.0.1:0`, 0},
		{"no listen field", `level=INFO msg="strongroom listening" public_url=https://localhost:1`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ListeningPort(c.stderr)
			if got != c.want || ok != (c.want != 0) {
				t.Fatalf("ListeningPort = %d, %v; want %d", got, ok, c.want)
			}
		})
	}
}

// Ports picked in advance come from below the ephemeral range and are never handed out twice.
func TestReservePort_BelowEphemeralRangeAndUnique(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := reservePort(t, "127.0.0.1")
		if p < 1024 || p >= ephemeralLow() || seen[p] {
			t.Fatalf("reservePort = %d (ephemeral range from %d, seen before: %v)", p, ephemeralLow(), seen[p])
		}
		seen[p] = true
	}
}
