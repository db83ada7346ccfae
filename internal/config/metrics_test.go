package config

import (
	"strings"
	"testing"
)

// metrics.public is the documented name; metrics.unauthenticated stays an alias.
func TestMetricsConfig_Public(t *testing.T) {
	cases := []struct {
		yaml       string
		public     bool
		vaultLabel int
	}{
		{"metrics: {}\n", false, 0},
		{"metrics:\n  public: true\n", true, 0},
		{"metrics:\n  unauthenticated: true\n", true, 0},
		{"metrics:\n  public: false\n  max_vault_labels: 50\n", false, 50},
	}
	for _, c := range cases {
		cfg := Default()
		if err := cfg.Parse(strings.NewReader(c.yaml)); err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if cfg.Metrics.IsPublic() != c.public || cfg.Metrics.MaxVaultLabels != c.vaultLabel {
			t.Errorf("%q: public %v, labels %d; want %v, %d", c.yaml, cfg.Metrics.IsPublic(), cfg.Metrics.MaxVaultLabels, c.public, c.vaultLabel)
		}
	}
}
