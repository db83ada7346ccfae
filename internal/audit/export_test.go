package audit

import (
	"os"
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
