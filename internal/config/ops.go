package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// SnapshotsConfig schedules encrypted snapshots of the store (the format of
// `strongroom operator snapshot save`). The zero value (Interval 0) means none are scheduled.
type SnapshotsConfig struct {
	// Interval is how often a snapshot is written. 0 (default) = off; otherwise at least 1s.
	Interval time.Duration `yaml:"interval"`
	// Retain is how many snapshot files are kept in Dir; older ones are removed. Default 24.
	Retain int `yaml:"retain"`
	// Dir is where snapshot files go. Default "<data_dir>/snapshots". Keep copies off the
	// machine: a snapshot is no backup while it shares the disk with the store.
	Dir string `yaml:"dir"`
}

// Enabled reports whether snapshots are scheduled.
func (s *SnapshotsConfig) Enabled() bool { return s.Interval > 0 }

// Validate checks the schedule and fills in defaults relative to dataDir.
func (s *SnapshotsConfig) Validate(dataDir string) error {
	switch {
	case s.Interval < 0:
		return fmt.Errorf("snapshots.interval: must not be negative")
	case s.Interval > 0 && s.Interval < time.Second:
		return fmt.Errorf("snapshots.interval: must be at least 1s")
	case s.Retain < 0:
		return fmt.Errorf("snapshots.retain: must be at least 1")
	}
	if s.Retain == 0 {
		s.Retain = 24
	}
	if s.Dir == "" {
		s.Dir = filepath.Join(dataDir, "snapshots")
	}
	return nil
}

// MetricsConfig configures the Prometheus endpoint, GET /metrics on the API listener.
type MetricsConfig struct {
	// Public serves /metrics without a token (for scrapers that cannot get one; the metrics
	// hold no secret names or values and no principals, but do reveal load, vault names and
	// cluster state). Default false: a bearer token for the management plane whose principal
	// holds Microsoft.Insights/metrics/read at scope "/" (Monitoring Reader, Reader, Owner,
	// Contributor, Strongroom Operator) is required.
	Public bool `yaml:"public"`
	// Unauthenticated is the older name of Public; either one set makes /metrics public.
	Unauthenticated bool `yaml:"unauthenticated"`
	// MaxVaultLabels caps how many vaults get a "vault" label of their own in the request
	// metrics; the others share "_other". 0 or less: the default, 500.
	MaxVaultLabels int `yaml:"max_vault_labels"`
}

// IsPublic reports whether /metrics is served without a token (public or unauthenticated).
func (m MetricsConfig) IsPublic() bool { return m.Public || m.Unauthenticated }
