package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/snapshotfile"
)

// Scheduled snapshots (config `snapshots`, flags --snapshot-schedule/--snapshot-retain/
// --snapshot-dir) are the files `operator snapshot save` writes, written atomically into the
// snapshot folder and pruned to the newest `retain` (snapshotfile.WriteFile, Prune). A single
// node writes them from its store; in a cluster only the current leader writes them (a
// whole-cluster snapshot at a linearizable point, as `operator raft snapshot save` takes), into
// its own snapshot folder. Failures are logged and counted
// (strongroom_snapshot_scheduled_total{result="failure"}), never fatal. A sealed server skips.

// runSnapshotSchedule writes scheduled snapshots until ctx ends.
func (c *core) runSnapshotSchedule(ctx context.Context) {
	sc := c.cfg.Snapshots
	c.log.Info("scheduled snapshots on", "interval", sc.Interval, "retain", sc.Retain, "dir", sc.Dir)
	tick := time.NewTicker(sc.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.scheduledSnapshot(ctx)
	}
}

// scheduledSnapshot takes one snapshot, if this server should, and prunes old files.
func (c *core) scheduledSnapshot(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			c.metrics.SnapshotFailure.Inc()
			c.log.Error("scheduled snapshot failed", "err", fmt.Sprint(p))
		}
	}()
	if c.sealed() {
		c.log.Debug("scheduled snapshot skipped: sealed")
		return
	}
	if cs, ok := c.st.(*cluster.Store); ok && !cs.Node().IsLeader() {
		return // the leader writes them
	}
	start := time.Now()
	name, size, err := c.writeScheduledSnapshot(ctx, start)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down
		}
		c.metrics.SnapshotFailure.Inc()
		c.log.Error("scheduled snapshot failed", "dir", c.cfg.Snapshots.Dir, "err", err)
		return
	}
	c.metrics.SnapshotSuccess.Inc()
	c.metrics.SnapshotLastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	c.metrics.SnapshotLastBytes.Set(float64(size))
	removed, err := snapshotfile.Prune(c.cfg.Snapshots.Dir, c.cfg.Snapshots.Retain)
	if err != nil {
		c.log.Warn("pruning old snapshots", "err", err)
	}
	c.log.Info("scheduled snapshot written", "file", name, "bytes", size, "took", time.Since(start).Round(time.Millisecond), "pruned", removed)
}

// writeScheduledSnapshot writes one snapshot file atomically and returns its path and size.
func (c *core) writeScheduledSnapshot(ctx context.Context, now time.Time) (string, int64, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return snapshotfile.WriteFile(c.cfg.Snapshots.Dir, now, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, 1<<16)
		if err := c.writeSnapshot(sctx, bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("writing snapshot file: %w", err)
		}
		return nil
	})
}
