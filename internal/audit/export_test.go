package audit

import (
	"os"
	"testing"
	"time"
)

// AppendJSON exposes the record encoder to tests.
func (r *Record) AppendJSON(dst []byte) []byte { return r.appendJSON(dst) }

// SwapFile replaces the log's file and deadline, to simulate failing or hung disks.
func (l *Log) SwapFile(f *os.File, deadline time.Duration) *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.f
	l.f, l.deadline = f, deadline
	return old
}

// OpenBytesRead is how many bytes of the log file Open read to resume the chain.
func (l *Log) OpenBytesRead() int64 { return l.openRead }

// SyncNow runs the once-a-second fsync and checkpoint step at once.
func (l *Log) SyncNow() { l.syncTick() }

// CheckpointPath is where the checkpoint of the log at path is kept.
func CheckpointPath(path string) string { return checkpointPath(path) }

// SetCheckpointPolicy changes when logs opened from now on move their checkpoint forward, until
// the test ends.
func SetCheckpointPolicy(t testing.TB, bytes int64, every time.Duration) {
	oldBytes, oldEvery := checkpointBytes, checkpointEvery
	checkpointBytes, checkpointEvery = bytes, every
	t.Cleanup(func() { checkpointBytes, checkpointEvery = oldBytes, oldEvery })
}

// SignedMessage exposes what a checkpoint record's signature covers, so tests can forge one
// under another key.
func (c *ChainCheckpoint) SignedMessage(op, at string) []byte { return c.signedMessage(op, at) }

// SetDiskCheckEvery changes how often the free space is read, until the test ends.
func SetDiskCheckEvery(t testing.TB, d time.Duration) {
	old := diskCheckEvery
	diskCheckEvery = d
	t.Cleanup(func() { diskCheckEvery = old })
}

// FillPipe fills the pipe w so that the next write through it blocks (a hung disk).
func FillPipe(t *testing.T, w *os.File) { fillPipe(t, w) }

// SignedMessage exposes what a checkpoint file's signature covers.
func (c *Checkpoint) SignedMessage() []byte { return c.signedMessage() }

// OpenDevFull opens /dev/full (every write fails with ENOSPC: a full disk). It is on every Linux
// machine; missing, the test is skipped, and fails under STRONGROOM_REQUIRE_ALL=1 (CI).
func OpenDevFull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
			t.Fatalf("/dev/full is required (STRONGROOM_REQUIRE_ALL=1) but unavailable: %v", err)
		}
		t.Skipf("no /dev/full (%v); set STRONGROOM_REQUIRE_ALL=1 to make this a failure", err)
	}
	return f
}
