package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverProc is the one server process scale mode starts, restarts and stops. It only ever
// signals the process it started.
type serverProc struct {
	bin, dataDir, host string
	extra              []string
	port               int // 0 until the first start reports the port it bound

	cmd    *exec.Cmd
	exited chan struct{}
	log    *tailLog
}

// start launches the server and returns when the process exists (not when it serves).
func (s *serverProc) start() error {
	args := []string{"server", "--data-dir", s.dataDir, "--listen", net.JoinHostPort(s.host, strconv.Itoa(s.port)),
		"--vault-requests-per-10s", "0"}
	if s.port != 0 {
		args = append(args, "--public-url", "https://localhost:"+strconv.Itoa(s.port))
	}
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	// stdout carries the bootstrap credential on a first start: it is not kept. stderr keeps a
	// bounded tail for error messages and the listening line.
	s.log = &tailLog{}
	cmd.Stderr = s.log
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting server %s: %w", s.bin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	return nil
}

// pid is the running server's process id.
func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// waitReady polls ready every 20 ms until it succeeds, the process exits or timeout passes.
// On a first start on port 0 it learns the port from the server's listening line first.
func (s *serverProc) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited during start-up: %s", s.log.String())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if s.port == 0 {
			s.port, _ = listeningPort(s.log.String())
		}
		if s.port != 0 {
			if last = ready(ctx); last == nil {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server not ready after %s (last: %v): %s", timeout, last, s.log.String())
}

// stop sends SIGTERM to the started process and waits for it to exit, killing it (the same
// pid) after timeout. It is a no-op when the process already exited.
func (s *serverProc) stop(timeout time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping server: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("stopping server: no exit %s after SIGTERM; killed", timeout)
	}
}

// listeningPort reads the port from the server's `msg="strongroom listening" listen=host:port`
// log line.
func listeningPort(stderr string) (int, bool) {
	for line := range strings.SplitSeq(stderr, "\n") {
		if !strings.Contains(line, `msg="strongroom listening"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if addr, ok := strings.CutPrefix(f, "listen="); ok {
				_, p, err := net.SplitHostPort(addr)
				if port, perr := strconv.Atoi(p); err == nil && perr == nil && port > 0 {
					return port, true
				}
			}
		}
	}
	return 0, false
}

// tailLog keeps the first and the last few KiB written to it: the start-up lines (the
// listening line among them) and the latest errors.
type tailLog struct {
	mu         sync.Mutex
	head, tail []byte
	listenAt   time.Time // when the listening line arrived
}

const tailLogKeep = 16 << 10

func (l *tailLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	if room := tailLogKeep - len(l.head); room > 0 {
		n = min(room, len(p))
		l.head = append(l.head, p[:n]...)
	}
	l.tail = append(l.tail, p[n:]...)
	if l.listenAt.IsZero() && bytes.Contains(l.head, []byte(`msg="strongroom listening"`)) {
		l.listenAt = listeningTime(l.head, time.Now())
	}
	if len(l.tail) > tailLogKeep {
		l.tail = append(l.tail[:0], l.tail[len(l.tail)-tailLogKeep:]...)
	}
	return len(p), nil
}

// listeningTime is the time the listening line in head carries (its slog time= field): when
// the server wrote it, which the pipe may deliver after the first request was already
// answered. arrived stands in when the line has no readable time.
func listeningTime(head []byte, arrived time.Time) time.Time {
	for line := range bytes.Lines(head) {
		if !bytes.Contains(line, []byte(`msg="strongroom listening"`)) {
			continue
		}
		if f, ok := bytes.CutPrefix(line, []byte("time=")); ok {
			stamp, _, _ := bytes.Cut(f, []byte(" "))
			if t, err := time.Parse(time.RFC3339Nano, string(stamp)); err == nil {
				return t
			}
		}
		break
	}
	return arrived
}

// listening returns when the server wrote its listening line (zero: not arrived yet).
func (l *tailLog) listening() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.listenAt
}

func (l *tailLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tail) == 0 {
		return string(l.head)
	}
	return string(l.head) + "\n[…]\n" + string(bytes.TrimLeft(l.tail, "\n"))
}
