package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Scheduled snapshots (config `snapshots`, flags --snapshot-schedule/--snapshot-retain/
// --snapshot-dir) are the files `operator snapshot save` writes, named
// "strongroom-<UTC time, 20060102T150405.000Z>.snap" so that names sort by age. Each is written
// to a temporary file in the same folder, fsynced, renamed and the folder fsynced, so a crash
// leaves either the complete file or none. After each success the oldest files beyond `retain`
// are removed. A single node writes them from its store; in a cluster only the current leader
// writes them (a whole-cluster snapshot at a linearizable point, as `operator raft snapshot
// save` takes), into its own snapshot folder. Failures are logged and counted
// (strongroom_snapshot_scheduled_total{result="failure"}), never fatal. A sealed server skips.
const (
	snapFilePrefix = "strongroom-"
	snapFileSuffix = ".snap"
	snapTimeFormat = "20060102T150405.000Z"
	snapTmpPrefix  = ".strongroom-snapshot-"
)

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
	if cs, ok := c.st.(*clusterStore); ok && !cs.Node().IsLeader() {
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
	removed, err := pruneSnapshots(c.cfg.Snapshots.Dir, c.cfg.Snapshots.Retain)
	if err != nil {
		c.log.Warn("pruning old snapshots", "err", err)
	}
	c.log.Info("scheduled snapshot written", "file", name, "bytes", size, "took", time.Since(start).Round(time.Millisecond), "pruned", removed)
}

// writeScheduledSnapshot writes one snapshot file atomically and returns its path and size.
func (c *core) writeScheduledSnapshot(ctx context.Context, now time.Time) (string, int64, error) {
	dir := c.cfg.Snapshots.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("creating snapshot folder: %w", err)
	}
	// Leftovers of a write that died (crash, full disk): only this loop writes here.
	if olds, err := filepath.Glob(filepath.Join(dir, snapTmpPrefix+"*")); err == nil {
		for _, o := range olds {
			_ = os.Remove(o)
		}
	}
	final := filepath.Join(dir, snapFilePrefix+now.UTC().Format(snapTimeFormat)+snapFileSuffix)
	tmp, err := os.CreateTemp(dir, snapTmpPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("creating snapshot file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	if err := c.writeSnapshot(sctx, bw); err != nil {
		return "", 0, err
	}
	if err := bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("writing snapshot file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("syncing snapshot file: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("closing snapshot file: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, fmt.Errorf("naming snapshot file: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return final, fi.Size(), err
	}
	return final, fi.Size(), nil
}

// pruneSnapshots removes the oldest scheduled snapshot files beyond retain and returns how many
// it removed. Only files named like scheduled snapshots are touched.
func pruneSnapshots(dir string, retain int) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, snapFilePrefix) && strings.HasSuffix(n, snapFileSuffix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	removed := 0
	var errs []error
	for len(names)-removed > retain {
		if err := os.Remove(filepath.Join(dir, names[removed])); err != nil {
			errs = append(errs, err)
		}
		removed++
	}
	if removed > 0 {
		errs = append(errs, syncDir(dir))
	}
	return removed, errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing folder: %w", err)
	}
	return nil
}
