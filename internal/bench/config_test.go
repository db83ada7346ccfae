package bench_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/bench"
)

func validConfig() bench.Config {
	c := bench.DefaultConfig()
	c.CAFile, c.AdminFile = "ca.pem", "admin.json"
	return c
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*bench.Config)
		wantErr []string // substrings; none means valid
	}{
		{"defaults plus files", func(*bench.Config) {}, nil},
		{"mix edge 0", func(c *bench.Config) { c.Mode, c.MixRead = bench.ModeMix, 0 }, nil},
		{"mix edge 1", func(c *bench.Config) { c.Mode, c.MixRead = bench.ModeMix, 1 }, nil},
		{"zero warmup", func(c *bench.Config) { c.Warmup = 0 }, nil},
		{"http server", func(c *bench.Config) { c.Server = "http://localhost:8443" }, []string{"--server"}},
		{"server without host", func(c *bench.Config) { c.Server = "https://" }, []string{"--server"}},
		{"no ca", func(c *bench.Config) { c.CAFile = "" }, []string{"--ca-file is required"}},
		{"no admin", func(c *bench.Config) { c.AdminFile = "" }, []string{"--admin-file is required"}},
		{"short vault", func(c *bench.Config) { c.Vault = "kv" }, []string{"--vault"}},
		{"vault with dot", func(c *bench.Config) { c.Vault = "bench.kv" }, []string{"--vault"}},
		{"zero workers", func(c *bench.Config) { c.Workers = 0 }, []string{"--workers"}},
		{"too many workers", func(c *bench.Config) { c.Workers = 5000 }, []string{"--workers"}},
		{"zero duration", func(c *bench.Config) { c.Duration = 0 }, []string{"--duration"}},
		{"negative warmup", func(c *bench.Config) { c.Warmup = -time.Second }, []string{"--warmup"}},
		{"unknown mode", func(c *bench.Config) { c.Mode = "scan" }, []string{"--mode"}},
		{"mix above 1", func(c *bench.Config) { c.MixRead = 1.5 }, []string{"--mix-read"}},
		{"empty value", func(c *bench.Config) { c.ValueSize = 0 }, []string{"--value-size"}},
		{"value over limit", func(c *bench.Config) { c.ValueSize = 25*1024 + 1 }, []string{"--value-size"}},
		{"no secrets", func(c *bench.Config) { c.Secrets = 0 }, []string{"--secrets"}},
		{"zero max ops", func(c *bench.Config) { c.MaxOps = 0 }, []string{"--max-ops"}},
		{"negative pid", func(c *bench.Config) { c.ServerPID = -1 }, []string{"--server-pid"}},
		{"several at once", func(c *bench.Config) { c.Workers, c.Mode = 0, "x" }, []string{"--workers", "--mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
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

func TestCommand_RejectsBadFlagsBeforeNetwork(t *testing.T) {
	cmd := bench.NewCommand()
	cmd.SetArgs([]string{"--ca-file", "x", "--admin-file", "y", "--mode", "scan", "--server", "https://127.0.0.1:1"})
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Fatalf("Execute() = %v, want a --mode error", err)
	}
}
