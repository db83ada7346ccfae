package snapshots

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/snapshotfile"
)

// Scheduled snapshots (config `snapshots`, flags --snapshot-schedule/--snapshot-retain/
// --snapshot-dir) are the files `operator snapshot save` writes, written atomically into the
// snapshot folder and pruned to the newest `retain` (snapshotfile.WriteFile, Prune). A single
// node writes them from its store; in a cluster only the current leader writes them (a
// whole-cluster snapshot at a linearizable point, as `operator raft snapshot save` takes), into
// its own snapshot folder. Failures are logged and counted
// (strongroom_snapshot_scheduled_total{result="failure"}), never fatal. A sealed server skips.

// Schedule writes snapshot files on an interval.
type Schedule struct {
	Config  config.SnapshotsConfig
	Metrics *metrics.Registry
	Log     *slog.Logger
	// Save writes one encrypted snapshot (SingleNode.Save, or the cluster node's SaveSnapshot).
	Save func(ctx context.Context, w io.Writer) error
	// Sealed reports whether the server is sealed (it skips).
	Sealed func() bool
	// Leads reports whether this node writes the snapshots: always for a single node (nil), the
	// current leader in a cluster.
	Leads func() bool
}

// Run writes scheduled snapshots until ctx ends.
func (s *Schedule) Run(ctx context.Context) {
	sc := s.Config
	s.Log.Info("scheduled snapshots on", "interval", sc.Interval, "retain", sc.Retain, "dir", sc.Dir)
	tick := time.NewTicker(sc.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.once(ctx)
	}
}

// once takes one snapshot, if this server should, and prunes old files.
func (s *Schedule) once(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			s.Metrics.SnapshotFailure.Inc()
			s.Log.Error("scheduled snapshot failed", "err", fmt.Sprint(p))
		}
	}()
	if s.Sealed() {
		s.Log.Debug("scheduled snapshot skipped: sealed")
		return
	}
	if s.Leads != nil && !s.Leads() {
		return // the leader writes them
	}
	start := time.Now()
	name, size, err := s.write(ctx, start)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down
		}
		s.Metrics.SnapshotFailure.Inc()
		s.Log.Error("scheduled snapshot failed", "dir", s.Config.Dir, "err", err)
		return
	}
	s.Metrics.SnapshotSuccess.Inc()
	s.Metrics.SnapshotLastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	s.Metrics.SnapshotLastBytes.Set(float64(size))
	removed, err := snapshotfile.Prune(s.Config.Dir, s.Config.Retain)
	if err != nil {
		s.Log.Warn("pruning old snapshots", "err", err)
	}
	s.Log.Info("scheduled snapshot written", "file", name, "bytes", size, "took", time.Since(start).Round(time.Millisecond), "pruned", removed)
}

// write writes one snapshot file atomically and returns its path and size.
func (s *Schedule) write(ctx context.Context, now time.Time) (string, int64, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return snapshotfile.WriteFile(s.Config.Dir, now, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, 1<<16)
		if err := s.Save(sctx, bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("writing snapshot file: %w", err)
		}
		return nil
	})
}
