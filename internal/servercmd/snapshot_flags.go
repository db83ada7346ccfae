package servercmd

import (
	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/config"
)

// addSnapshotFlags registers the server's scheduled-snapshot and metrics flags on cmd.
func addSnapshotFlags(cmd *cobra.Command, s *config.SnapshotsConfig, m *config.MetricsConfig) {
	f := cmd.Flags()
	f.DurationVar(&s.Interval, "snapshot-schedule", 0, "write an encrypted snapshot of the store this often (0: off); in a cluster the leader writes them")
	f.IntVar(&s.Retain, "snapshot-retain", 0, "scheduled snapshot files to keep (default 24)")
	f.StringVar(&s.Dir, "snapshot-dir", "", "folder for scheduled snapshots (default <data-dir>/snapshots)")
	f.BoolVar(&m.Unauthenticated, "metrics-unauthenticated", false, "serve /metrics without a bearer token")
}

// overlaySnapshotFlags copies the snapshot and metrics flags the user set explicitly onto the
// file configuration.
func overlaySnapshotFlags(cmd *cobra.Command, file, flags *config.Config) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("snapshot-schedule", func() { file.Snapshots.Interval = flags.Snapshots.Interval })
	set("snapshot-retain", func() { file.Snapshots.Retain = flags.Snapshots.Retain })
	set("snapshot-dir", func() { file.Snapshots.Dir = flags.Snapshots.Dir })
	set("metrics-unauthenticated", func() { file.Metrics.Unauthenticated = flags.Metrics.Unauthenticated })
}
