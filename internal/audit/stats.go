package audit

import (
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Stats is the log's state for monitoring (metrics) and health checks.
type Stats struct {
	BytesWritten int64 // bytes appended since Open, over all files
	FileBytes    int64 // size of the active file as written
	RotatedFiles int   // rotated files in the audit folder
	// FreeBytes is the free space of the audit folder's file system at the last check (every
	// few seconds; -1 before the first). LowDisk is set below Options.MinFreeBytes or below twice
	// Options.MaxFileBytes: the log will soon fail (closed) for lack of space.
	FreeBytes int64
	LowDisk   bool
	// LastSync is the last successful fsync of the active file; SyncLag how long ago that was.
	LastSync time.Time
	SyncLag  time.Duration
	// RecordsSinceSignedCheckpoint is how many records no signed checkpoint covers yet.
	RecordsSinceSignedCheckpoint int64
	Signing                      bool // a signing key is set (the server is unsealed)
	Healthy                      bool
}

// statsState is what Stats reads besides the chain; the fields that are not atomic are guarded
// by ckptMu.
type statsState struct {
	bytes    atomic.Int64
	lastSync atomic.Int64 // unix nanoseconds
	rotated  atomic.Int64
	free     atomic.Int64
	low      atomic.Bool
	diskAt   time.Time
	toRemove []string // rotated files to delete once the start record naming them is fsynced
	lastName string   // the newest rotated file's name
}

// diskCheckEvery bounds how often the free space is read.
var diskCheckEvery = 5 * time.Second

// Stats returns the log's current state.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	s := Stats{FileBytes: l.written.Offset, RecordsSinceSignedCheckpoint: l.sinceSigned, Signing: l.signer != nil}
	l.mu.Unlock()
	s.BytesWritten = l.stats.bytes.Load()
	s.RotatedFiles = int(l.stats.rotated.Load())
	s.FreeBytes, s.LowDisk = l.stats.free.Load(), l.stats.low.Load()
	if ns := l.stats.lastSync.Load(); ns != 0 {
		s.LastSync = time.Unix(0, ns)
		s.SyncLag = time.Since(s.LastSync)
	}
	s.Healthy = l.Healthy()
	return s
}

// afterSync runs after each successful fsync of the active file (st is what it covers): it
// deletes the files retention released, queues a checkpoint record when one is due by time and
// checks the free disk space. Call with ckptMu held.
func (l *Log) afterSync(st chainState) {
	now := time.Now()
	l.stats.lastSync.Store(now.UnixNano())
	l.removeRetained(st)
	l.mu.Lock()
	due := l.signer != nil && l.sinceCkpt > 0 && now.Sub(l.lastCkptRec) >= l.opts.CheckpointInterval && !l.failed.Load()
	if due {
		l.appendCheckpointLocked(OpCheckpoint, nil, "")
	}
	l.mu.Unlock()
	if due {
		l.kick()
	}
	if now.Sub(l.stats.diskAt) >= diskCheckEvery {
		l.stats.diskAt = now
		l.checkDisk()
	}
}

// checkDisk reads the audit folder's free space and warns once per change of the alarm.
func (l *Log) checkDisk() {
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(l.path), &fs); err != nil {
		l.opts.Logger.Warn("audit log: cannot read the free disk space", "err", err)
		return
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	limit := max(l.opts.MinFreeBytes, 2*l.opts.MaxFileBytes)
	low := free < limit
	l.stats.free.Store(free)
	if l.stats.low.Swap(low) != low {
		if low {
			l.opts.Logger.Warn("audit log: the disk is nearly full; requests will be refused once records cannot be written",
				"freeBytes", free, "thresholdBytes", limit, "dir", filepath.Dir(l.path))
		} else {
			l.opts.Logger.Info("audit log: free disk space is back above the threshold", "freeBytes", free, "thresholdBytes", limit)
		}
	}
}

// finalCheckpoint queues a signed checkpoint of what is not covered yet, at a clean close.
func (l *Log) finalCheckpoint() {
	l.mu.Lock()
	due := l.signer != nil && l.sinceSigned > 0 && !l.failed.Load()
	if due {
		l.appendCheckpointLocked(OpCheckpoint, nil, "")
	}
	l.mu.Unlock()
	if due {
		l.kick()
	}
}
