package bench_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/bench"
)

func validScale() bench.ScaleConfig {
	c := bench.DefaultScaleConfig()
	c.DataDir = "data"
	return c
}

func TestScaleConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*bench.ScaleConfig)
		wantErr []string // substrings; none means valid
	}{
		{"defaults plus data dir", func(*bench.ScaleConfig) {}, nil},
		{"10,000 vaults of 100", func(c *bench.ScaleConfig) { c.Secrets, c.Vaults = 1_000_000, 10_000 }, nil},
		{"baseline equals N", func(c *bench.ScaleConfig) { c.Secrets, c.Baseline = 300, 300 }, nil},
		{"port 0", func(c *bench.ScaleConfig) { c.Listen = "127.0.0.1:0" }, nil},
		{"ipv6 loopback", func(c *bench.ScaleConfig) { c.Listen = "[::1]:8443" }, nil},
		{"localhost", func(c *bench.ScaleConfig) { c.Listen = "localhost:8443" }, nil},
		{"zero warmup", func(c *bench.ScaleConfig) { c.Warmup = 0 }, nil},
		{"system cache drop", func(c *bench.ScaleConfig) { c.ColdCache = bench.ColdCacheSystem }, nil},
		{"no cold restart", func(c *bench.ScaleConfig) { c.ColdCache = bench.ColdCacheOff }, nil},
		{"no data dir", func(c *bench.ScaleConfig) { c.DataDir = "" }, []string{"--data-dir is required"}},
		{"all interfaces", func(c *bench.ScaleConfig) { c.Listen = "0.0.0.0:8443" }, []string{"--listen", "not a loopback"}},
		{"empty host", func(c *bench.ScaleConfig) { c.Listen = ":8443" }, []string{"--listen"}},
		{"public address", func(c *bench.ScaleConfig) { c.Listen = "10.1.2.3:8443" }, []string{"--listen"}},
		{"no port", func(c *bench.ScaleConfig) { c.Listen = "127.0.0.1" }, []string{"--listen"}},
		{"bad port", func(c *bench.ScaleConfig) { c.Listen = "127.0.0.1:70000" }, []string{"--listen"}},
		{"zero secrets", func(c *bench.ScaleConfig) { c.Secrets = 0 }, []string{"--secrets"}},
		{"too many secrets", func(c *bench.ScaleConfig) { c.Secrets = 10_000_001 }, []string{"--secrets"}},
		{"zero vaults", func(c *bench.ScaleConfig) { c.Vaults = 0 }, []string{"--vaults"}},
		{"uneven split", func(c *bench.ScaleConfig) { c.Secrets, c.Vaults, c.Baseline = 1000, 3, 100 }, []string{"does not divide"}},
		{"baseline above N", func(c *bench.ScaleConfig) { c.Secrets = 500 }, []string{"--baseline"}},
		{"zero baseline", func(c *bench.ScaleConfig) { c.Baseline = 0 }, []string{"--baseline"}},
		{"zero workers", func(c *bench.ScaleConfig) { c.Workers = 0 }, []string{"--workers"}},
		{"value over limit", func(c *bench.ScaleConfig) { c.ValueSize = 25*1024 + 1 }, []string{"--value-size"}},
		{"zero read window", func(c *bench.ScaleConfig) { c.ReadWindow = 0 }, []string{"--read-window"}},
		{"negative warmup", func(c *bench.ScaleConfig) { c.Warmup = -time.Second }, []string{"--warmup"}},
		{"zero idle", func(c *bench.ScaleConfig) { c.Idle = 0 }, []string{"--idle"}},
		{"zero max duration", func(c *bench.ScaleConfig) { c.MaxDuration = 0 }, []string{"--max-duration"}},
		{"zero restart timeout", func(c *bench.ScaleConfig) { c.RestartTimeout = 0 }, []string{"--restart-timeout"}},
		{"zero list samples", func(c *bench.ScaleConfig) { c.ListSamples = 0 }, []string{"--list-samples"}},
		{"unknown cold cache", func(c *bench.ScaleConfig) { c.ColdCache = "drop" }, []string{"--cold-cache"}},
		{"bad vault name", func(c *bench.ScaleConfig) { c.Vault = "kv" }, []string{"--vault"}},
		// With many vaults the prefix gets "-9999": a 20-letter prefix makes 25 characters.
		{"prefix too long for the vault count", func(c *bench.ScaleConfig) {
			c.Vault, c.Secrets, c.Vaults = strings.Repeat("a", 20), 10_000, 10_000
		}, []string{"--vault", "-9999"}},
		{"same prefix, one vault", func(c *bench.ScaleConfig) { c.Vault = strings.Repeat("a", 20) }, nil},
		{"empty group", func(c *bench.ScaleConfig) { c.ResourceGroup = "" }, []string{"--resource-group"}},
		{"several at once", func(c *bench.ScaleConfig) { c.Workers, c.ColdCache = 0, "x" }, []string{"--workers", "--cold-cache"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validScale()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors mentioning %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to mention %q", err, want)
				}
			}
		})
	}
}

// Bad flags are refused before any server is started (the binary would not exist).
func TestScaleCommand_RejectsBadFlagsBeforeStarting(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"scale", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:1"}, "--listen"},
		{[]string{"scale", "--listen", "127.0.0.1:1"}, "--data-dir"},
		{[]string{"scale", "--data-dir", t.TempDir(), "--secrets", "1000", "--vaults", "7"}, "does not divide"},
	}
	for _, tt := range tests {
		cmd := bench.NewCommand()
		cmd.SetArgs(append(tt.args, "--server-binary", "/nonexistent/strongroom"))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: Execute() = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}
