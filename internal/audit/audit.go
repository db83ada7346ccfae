// Package audit writes Strongroom's tamper-evident audit log: one JSON line per request in Key
// Vault's AuditEvent shape, each line carrying the SHA-256 of the line before it, so deleting or
// editing a record breaks the chain that Verify checks. A checkpoint next to the log records
// the chain's end durably, so that Open checks the file's tail against it instead of re-hashing
// the whole history (resume.go, checkpoint.go); Verify and VerifyHistory re-hash the history.
//
// Invariants: records are explicit structs with an allowlist of fields (never a secret value,
// token or client secret); logging is fail-closed (Write returns an error when the record could
// not be written within its deadline, and the caller must then not acknowledge the request; once
// the sink has failed, Healthy reports false until restart).
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one AuditEvent. Field names follow Azure's AuditEvent JSON.
type Record struct {
	Time              string     `json:"time"`
	ResourceID        string     `json:"resourceId,omitempty"`
	OperationName     string     `json:"operationName"`
	OperationVersion  string     `json:"operationVersion,omitempty"`
	Category          string     `json:"category"`
	ResultType        string     `json:"resultType"`
	ResultSignature   string     `json:"resultSignature"`
	ResultDescription string     `json:"resultDescription,omitempty"`
	DurationMs        int64      `json:"durationMs"`
	CallerIPAddress   string     `json:"callerIpAddress,omitempty"`
	CorrelationID     string     `json:"correlationId,omitempty"`
	RequestID         string     `json:"requestId"`
	Identity          *Identity  `json:"identity,omitempty"`
	Properties        Properties `json:"properties"`
	// Checkpoint is set only on the log's own records (OpCheckpoint, OpLogStart; sign.go).
	Checkpoint *ChainCheckpoint `json:"auditCheckpoint,omitempty"`
	PrevHash   string           `json:"prevHash"`
}

// Identity holds the allowlisted token claims of the caller.
type Identity struct {
	Claim Claims `json:"claim"`
}

// Claims are the caller's token claims kept in audit records (in JSON key order).
type Claims struct {
	AppID        string `json:"appid"`
	IdentityType string `json:"idtyp"`
	ObjectID     string `json:"oid"`
	TenantID     string `json:"tid"`
	UPN          string `json:"upn,omitempty"` // a user's sign-in name, when the caller is a user signing in
}

// Properties are the per-request details.
type Properties struct {
	ID                  string `json:"id,omitempty"`
	ClientInfo          string `json:"clientInfo,omitempty"`
	HTTPStatusCode      int    `json:"httpStatusCode"`
	RequestURI          string `json:"requestUri"`
	IsRbacAuthorized    *bool  `json:"isRbacAuthorized,omitempty"`
	IsAccessPolicyMatch *bool  `json:"isAccessPolicyMatch,omitempty"`
	AppliedAssignmentID string `json:"appliedAssignmentId,omitempty"`
	TLSVersion          string `json:"tlsVersion,omitempty"`
	// PolicyEvaluations are the policy assignments' verdicts on a write (a JSON array of
	// {policyAssignmentId, policyDefinitionId, effect, complianceState, denied, reason}).
	PolicyEvaluations json.RawMessage `json:"policyEvaluations,omitempty"`
}

// ErrUnavailable means the audit sink failed; requests must be refused.
var ErrUnavailable = errors.New("audit log unavailable")

// Log appends records to a file. It is safe for concurrent use. Records that arrive while a
// write is in flight are chained into one pending batch and written together by the writer
// goroutine: one write system call per batch, and per record only a mutex and a shared wait.
type Log struct {
	f        *os.File
	deadline time.Duration
	failed   atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup
	wake     chan struct{} // capacity 1: a batch is pending
	dropFile *os.File      // the file dropOff is in (syncTick, under ckptMu)
	dropOff  int64         // its page cache is dropped up to here

	mu       sync.Mutex
	lastHash [2 * sha256.Size]byte // hex hash of the last chained line
	hasHash  bool                  // false for a new log (prevHash "")
	pending  *batch                // chained, not yet handed to the writer
	inflight *batch                // being written
	since    time.Time             // when inflight's write started
	written  chainState            // the chain at the end of the last batch in the file

	// Resuming and checkpoints (resume.go, checkpoint.go). ckptMu guards ckpt*: syncLoop and
	// Close write checkpoints.
	path        string
	resumedFrom chainState // where Open's re-hash started: its history is left to Verify
	openRead    int64      // bytes of the log Open read
	ckptMu      sync.Mutex
	ckpt        chainState // what the checkpoint file records
	ckptAt      time.Time
	ckptErr     error // the last failed checkpoint write, until one succeeds
	ckptBytes   int64
	ckptEvery   time.Duration

	// Signed checkpoint records, rotation and retention (sign.go, rotate.go), guarded by mu:
	// the file's sequence number, the records chained into it, and since the last checkpoint
	// record (and the last signed one).
	signer      *signer
	seq         int64
	chained     int64
	sinceCkpt   int64
	sinceSigned int64
	lastCkptRec time.Time
	histPath    string // the file VerifyHistory reads: l.path until it is rotated
	opts        Options
	stats       statsState // stats.go

	// intents is the journal that makes a change's record durable before it commits (intent.go).
	intents *intentJournal
	// fatal means failed for good (a broken history, a failed rotation, Close): the log does not
	// resume by itself as it does after a failed or hung write (recover.go).
	fatal atomic.Bool

	closeOnce sync.Once // Close is idempotent
	closeErr  error
}

// batch is a run of chained lines written with one system call; done closes when it is written
// or failed (err says which).
type batch struct {
	buf  []byte
	done chan struct{}
	err  error
	shut bool // done is closed
}

// finish records the outcome and wakes the waiters; call with l.mu held.
func (b *batch) finish(err error) {
	if b.shut {
		return
	}
	b.err, b.shut = err, true
	close(b.done)
}

var (
	linePool  = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// Open opens (creating with mode 0600) the log at path and resumes its hash chain from the
// checkpoint next to it (path + ".checkpoint"), checking the checkpoint against the file and
// every record written after it; it reads the whole log only when there is no checkpoint yet.
// The history before the checkpoint is re-hashed by Verify (`strongroom audit verify`) or
// VerifyHistory, not here, so that opening does not grow with the log. Open refuses a log that
// does not match its checkpoint, ends in an incomplete record or has a broken chain after it.
// When the log was rotated and the active file is missing or empty (a crash during a rotation),
// the new file starts with a record linking it to the last rotated file (rotate.go). opts (at
// most one) sets rotation, retention, the disk alarm and checkpoint records.
func Open(path string, opts ...Options) (*Log, error) {
	rs, err := resume(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l := &Log{f: f, deadline: 5 * time.Second, done: make(chan struct{}), wake: make(chan struct{}, 1),
		written: rs.end, path: path, resumedFrom: rs.from, openRead: rs.read,
		ckptBytes: checkpointBytes, ckptEvery: checkpointEvery}
	l.lastHash, l.hasHash = rs.end.last, rs.end.has
	l.startChain(rs, opts)
	if err := l.checkpointAtOpen(rs); err != nil {
		f.Close()
		return nil, err
	}
	if l.intents, err = openIntents(path, l.deadline, func() { l.failed.Store(true) }); err != nil {
		f.Close()
		return nil, err
	}
	l.wg.Add(4)
	go l.writeLoop()
	go l.syncLoop()
	go l.watchdog()
	go l.resumeLoop()
	l.kick() // the start record of a continued file, if any
	if err := l.recoverIntents(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Healthy reports whether the sink is still writing.
func (l *Log) Healthy() bool { return !l.failed.Load() }

// Write appends rec and returns once it is in the file (the OS page cache; the file is fsynced
// every second and on Close). It fails after the deadline or once the sink has failed.
func (l *Log) Write(_ context.Context, rec *Record) error {
	if l.failed.Load() {
		return ErrUnavailable
	}
	// Encode outside the lock; only chaining and the copy into the batch are serialized.
	lp := linePool.Get().(*[]byte)
	line := rec.appendJSON((*lp)[:0])
	l.mu.Lock()
	if l.failed.Load() {
		l.mu.Unlock()
		linePool.Put(lp)
		return ErrUnavailable
	}
	b := l.chainLocked(line)
	l.mu.Unlock()
	*lp = line
	linePool.Put(lp)
	l.kick() // unless the writer is already due to look
	<-b.done
	return b.err
}

// chainLocked appends line, which ends with `"prevHash":"`, to the pending batch: it chains it
// to the previous line, hashes it and ends it. Call with l.mu held.
func (l *Log) chainLocked(line []byte) *batch {
	b := l.pending
	if b == nil {
		b = &batch{buf: (*batchBufs.Get().(*[]byte))[:0], done: make(chan struct{})}
		l.pending = b
	}
	start := len(b.buf)
	b.buf = append(b.buf, line...)
	if l.hasHash {
		b.buf = append(b.buf, l.lastHash[:]...)
	}
	b.buf = append(b.buf, '"', '}')
	sum := sha256.Sum256(b.buf[start:])
	hex.Encode(l.lastHash[:], sum[:])
	l.hasHash = true
	b.buf = append(b.buf, '\n')
	l.chained++
	l.sinceCkpt++
	l.sinceSigned++
	return b
}

// writeLoop is the only writer of the file.
func (l *Log) writeLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		// Let the request goroutines that are runnable reach Write first, so that one write(2)
		// carries their records too. With nothing else runnable this returns at once (no added
		// latency at low load); under load it cut server CPU per read by ~15 % (docs/benchmarks.md).
		runtime.Gosched()
		l.mu.Lock()
		if l.signer != nil && l.sinceCkpt >= int64(l.opts.CheckpointRecords) {
			l.appendCheckpointLocked(OpCheckpoint, nil, "")
		}
		b := l.pending
		l.pending = nil
		if b == nil {
			l.mu.Unlock()
			continue
		}
		l.inflight, l.since = b, time.Now()
		f := l.f
		end := l.written // the chain once b is in the file: b's last line is the last chained
		end.last, end.has = l.lastHash, true
		l.mu.Unlock()
		var err error
		if l.failed.Load() {
			err = ErrUnavailable
		} else if _, werr := f.Write(b.buf); werr != nil {
			l.failed.Store(true)
			err = fmt.Errorf("writing audit log: %v: %w", werr, ErrUnavailable)
		} else {
			end.Offset += int64(len(b.buf))
			end.Records += bytes.Count(b.buf, []byte{'\n'})
			l.stats.bytes.Add(int64(len(b.buf)))
		}
		l.mu.Lock()
		if err == nil {
			l.written = end
		}
		l.inflight = nil
		if !b.shut { // the watchdog may have given up on it; then the buffer is left alone
			buf := b.buf
			b.buf = nil
			batchBufs.Put(&buf)
		}
		b.finish(err) // no-op if the watchdog already failed it
		if err != nil {
			l.failPendingLocked()
		}
		l.mu.Unlock()
		if err == nil && l.opts.MaxFileBytes > 0 && end.Offset >= l.opts.MaxFileBytes {
			l.rotate()
		}
	}
}

// watchdog fails the sink when a write has been in flight longer than the deadline (a hung
// disk): its waiters and everything after them get ErrUnavailable instead of waiting forever.
func (l *Log) watchdog() {
	defer l.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.done:
			return
		}
		l.mu.Lock()
		if b := l.inflight; b != nil && time.Since(l.since) > l.deadline {
			l.failed.Store(true)
			b.finish(fmt.Errorf("writing audit log: deadline exceeded: %w", ErrUnavailable))
			l.failPendingLocked()
		}
		l.mu.Unlock()
	}
}

// failPendingLocked fails the batch that has not been handed to the writer; call with l.mu held.
func (l *Log) failPendingLocked() {
	if b := l.pending; b != nil {
		l.pending = nil
		b.finish(ErrUnavailable)
	}
}

func (l *Log) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.syncTick()
		case <-l.done:
			return
		}
	}
}

// syncTick fsyncs the log, then moves the checkpoint to what was written before the fsync when
// it is due, and does the periodic work that follows an fsync (stats.go: retention, signed
// checkpoint records, the disk alarm). ckptMu keeps a rotation from swapping the file meanwhile.
func (l *Log) syncTick() {
	clear := l.intents.beforeLogSync()
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	f, st := l.f, l.written
	l.mu.Unlock()
	if err := f.Sync(); err != nil {
		l.failed.Store(true)
		return
	}
	l.intents.afterLogSync(clear)
	l.dropCached(f, st.Offset)
	l.maybeCheckpoint(f, st)
	l.afterSync(st)
}

// dropCached lets the kernel drop the page cache of what is now synced: the log is read back
// only by queries and verification, so keeping it cached only grows the page cache by every
// record written. Reusing the freed pages for the next records is also cheaper than taking
// fresh ones (on a VM, a first touch of guest memory costs a host fault: that tripled the CPU of
// the audit writes under read load). Called with ckptMu held; best effort.
func (l *Log) dropCached(f *os.File, synced int64) {
	if f != l.dropFile {
		l.dropFile, l.dropOff = f, 0
	}
	if synced > l.dropOff {
		_ = unix.Fadvise(int(f.Fd()), l.dropOff, synced-l.dropOff, unix.FADV_DONTNEED)
		l.dropOff = synced
	}
}

// Close writes what is pending, then syncs and closes the file. Later writes fail at once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Log) close() error {
	l.finalCheckpoint()
	// Let the writer take what is already chained before stopping it.
	for i := 0; i < 500; i++ {
		l.mu.Lock()
		idle := l.pending == nil && l.inflight == nil
		l.mu.Unlock()
		if idle {
			break
		}
		select {
		case l.wake <- struct{}{}:
		default:
		}
		time.Sleep(time.Millisecond)
	}
	l.fatal.Store(true)
	l.failed.Store(true)
	close(l.done)
	l.wg.Wait()
	l.intents.close()
	l.mu.Lock()
	l.failPendingLocked()
	st := l.written
	l.mu.Unlock()
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return fmt.Errorf("syncing audit log: %w", err)
	}
	// A clean close checkpoints the end, so the next open reads no record twice.
	l.ckptMu.Lock()
	l.removeRetained(st) // the start record naming them is fsynced now
	ckErr := l.ckptErr
	if st.Offset != l.ckpt.Offset {
		ckErr = l.checkpoint(l.f, st)
	}
	l.ckptMu.Unlock()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("closing audit log: %w", err)
	}
	return ckErr
}
