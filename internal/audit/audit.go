// Package audit writes Strongroom's tamper-evident audit log: one JSON line per request in Key
// Vault's AuditEvent shape, each line carrying the SHA-256 of the line before it, so deleting or
// editing a record breaks the chain that Verify checks.
//
// Invariants: records are explicit structs with an allowlist of fields (never a secret value,
// token or client secret); logging is fail-closed (Write returns an error when the record could
// not be written within its deadline, and the caller must then not acknowledge the request; once
// the sink has failed, Healthy reports false until restart).
package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
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
	PrevHash          string     `json:"prevHash"`
}

// Identity holds the allowlisted token claims of the caller.
type Identity struct {
	Claim map[string]string `json:"claim"`
}

// Properties are the per-request details.
type Properties struct {
	ID                  string `json:"id,omitempty"`
	ClientInfo          string `json:"clientInfo,omitempty"`
	HTTPStatusCode      int    `json:"httpStatusCode"`
	RequestURI          string `json:"requestUri"`
	IsRbacAuthorized    *bool  `json:"isRbacAuthorized,omitempty"`
	AppliedAssignmentID string `json:"appliedAssignmentId,omitempty"`
	TLSVersion          string `json:"tlsVersion,omitempty"`
}

// ErrUnavailable means the audit sink failed; requests must be refused.
var ErrUnavailable = errors.New("audit log unavailable")

// Log appends records to a file. It is safe for concurrent use; concurrent writes are grouped
// into one write system call.
type Log struct {
	f        *os.File
	queue    chan *entry
	deadline time.Duration
	failed   atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup
	lastHash string
}

type entry struct {
	line []byte // the record's JSON with an empty prevHash as its last field
	done chan error
}

// Open opens (creating with mode 0600) the log at path and resumes its hash chain.
func Open(path string) (*Log, error) {
	last, err := lastHash(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l := &Log{f: f, queue: make(chan *entry, 8192), deadline: 5 * time.Second, done: make(chan struct{}), lastHash: last}
	l.wg.Add(2)
	go l.writeLoop()
	go l.syncLoop()
	return l, nil
}

// Healthy reports whether the sink is still writing.
func (l *Log) Healthy() bool { return !l.failed.Load() }

// Write appends rec and returns once it is in the file (the OS page cache; the file is fsynced
// every second and on Close). It fails after the deadline or once the sink has failed.
func (l *Log) Write(ctx context.Context, rec *Record) error {
	if l.failed.Load() {
		return ErrUnavailable
	}
	// Marshal here, in the caller's goroutine, so the single writer only chains and writes.
	rec.PrevHash = ""
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	e := &entry{line: line, done: make(chan error, 1)}
	t := time.NewTimer(l.deadline)
	defer t.Stop()
	select {
	case l.queue <- e:
	case <-t.C:
		l.failed.Store(true)
		return fmt.Errorf("queueing audit record: %w", ErrUnavailable)
	}
	select {
	case err := <-e.done:
		return err
	case <-t.C:
		l.failed.Store(true)
		return fmt.Errorf("writing audit record: deadline exceeded: %w", ErrUnavailable)
	}
}

func (l *Log) writeLoop() {
	defer l.wg.Done()
	var buf []byte
	batch := make([]*entry, 0, 256)
	for {
		var first *entry
		select {
		case first = <-l.queue:
		case <-l.done:
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < cap(batch) {
			select {
			case e := <-l.queue:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		buf = buf[:0]
		hash := l.lastHash
		for _, e := range batch {
			// PrevHash is the record's last field, marshaled as `"prevHash":""}`: fill it in.
			start := len(buf)
			buf = append(buf, e.line[:len(e.line)-3]...)
			buf = append(buf, '"')
			buf = append(buf, hash...)
			buf = append(buf, '"', '}')
			sum := sha256.Sum256(buf[start:])
			hash = hex.EncodeToString(sum[:])
			buf = append(buf, '\n')
		}
		var err error
		if l.failed.Load() {
			err = ErrUnavailable
		} else if _, werr := l.f.Write(buf); werr != nil {
			l.failed.Store(true)
			err = fmt.Errorf("writing audit log: %v: %w", werr, ErrUnavailable)
		} else {
			l.lastHash = hash
		}
		for _, e := range batch {
			e.done <- err
		}
	}
}

func (l *Log) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := l.f.Sync(); err != nil {
				l.failed.Store(true)
			}
		case <-l.done:
			return
		}
	}
}

// Close flushes and closes the log.
func (l *Log) Close() error {
	l.failed.Store(true) // later writes fail at once instead of waiting for the deadline
	close(l.done)
	l.wg.Wait()
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return fmt.Errorf("syncing audit log: %w", err)
	}
	return l.f.Close()
}

// lastHash returns the hash of the last line of the log at path ("" for a new log).
func lastHash(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading audit log: %w", err)
	}
	defer f.Close()
	res, err := verify(f)
	if err != nil {
		return "", fmt.Errorf("resuming audit chain: %w", err)
	}
	return res.LastHash, nil
}

// VerifyResult summarizes a verified log.
type VerifyResult struct {
	Records  int
	LastHash string
}

// Verify checks the whole chain of the log at path and reports the first broken record.
func Verify(path string) (VerifyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	return verify(f)
}

func verify(r io.Reader) (VerifyResult, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var res VerifyResult
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct {
			PrevHash string `json:"prevHash"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return res, fmt.Errorf("record %d: not JSON: %w", res.Records+1, err)
		}
		if rec.PrevHash != res.LastHash {
			return res, fmt.Errorf("record %d: chain broken (prevHash %q, want %q)", res.Records+1, rec.PrevHash, res.LastHash)
		}
		sum := sha256.Sum256(line)
		res.LastHash = hex.EncodeToString(sum[:])
		res.Records++
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("reading audit log: %w", err)
	}
	return res, nil
}
