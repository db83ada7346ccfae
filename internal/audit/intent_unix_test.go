package audit

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// fillPipe fills the pipe w with raw non-blocking writes (os.File's own would wait instead), so
// that the next write through w blocks.
func fillPipe(t *testing.T, w *os.File) {
	t.Helper()
	raw, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	if err := raw.Write(func(fd uintptr) bool {
		buf := make([]byte, 4096)
		for {
			if _, werr = unix.Write(int(fd), buf); werr != nil {
				return true
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(werr, unix.EAGAIN) {
		t.Fatalf("filling the pipe: %v", werr)
	}
}
