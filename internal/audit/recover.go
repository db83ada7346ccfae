package audit

import (
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
)

// OpResumed is the operationName of the record a log writes when it resumes after a failure.
const OpResumed = "AuditLogResumed"

// resumeEvery is how often a failed log checks whether it can resume.
const resumeEvery = time.Second

// resumeLoop lets a log that failed on a write, a hung write or a sync serve again once the disk
// does, without a restart: requests are refused (fail-closed) only while no record can be
// written. A log failed for good (fatal) stays failed.
func (l *Log) resumeLoop() {
	defer l.wg.Done()
	t := time.NewTicker(resumeEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.done:
			return
		}
		if l.failed.Load() && !l.fatal.Load() && l.tryResume() {
			l.kick()
		}
	}
}

// tryResume resumes the log if nothing is being written any more: it cuts what a failed write
// may have left after the last complete batch (records nobody was answered for), chains on from
// that batch, and queues a record saying the log resumed, which is also the probe: if the disk
// still fails, the log fails again. It reports whether it resumed.
func (l *Log) tryResume() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != nil || l.fatal.Load() || !l.failed.Load() {
		return false // a hung write has not returned yet: its outcome decides what the file holds
	}
	j := l.intents
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return false
	}
	if err := cutTo(l.f, l.written.Offset); err != nil {
		l.opts.Logger.Debug("audit log cannot resume yet", "err", err)
		return false
	}
	for i, f := range j.files {
		if err := cutTo(f, j.good[i]); err != nil {
			l.opts.Logger.Debug("audit intent journal cannot resume yet", "err", err)
			return false
		}
	}
	l.lastHash, l.hasHash = l.written.last, l.written.has
	l.chained = int64(l.written.Records)
	l.failed.Store(false)
	rec := &Record{Time: FormatTime(time.Now()), OperationName: OpResumed, Category: "AuditEvent", ResultType: "Success",
		ResultSignature: "OK", RequestID: uuid.NewString(), Properties: Properties{HTTPStatusCode: 200},
		ResultDescription: "The audit log resumed after a write failure; requests refused meanwhile were not executed."}
	l.chainLocked(rec.appendJSON(nil))
	l.opts.Logger.Warn("audit log resumed after a failure: requests are served again")
	return true
}

// cutTo truncates the regular file f to size: what a failed write left after it. A file shorter
// than size (it lost what was written) or not a regular file is not resumed from.
func cutTo(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading the audit file's size: %w", err)
	}
	switch {
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", f.Name())
	case st.Size() < size:
		return fmt.Errorf("%s holds %d bytes, fewer than the %d written", f.Name(), st.Size(), size)
	case st.Size() > size:
		return f.Truncate(size)
	}
	return nil
}
