package app

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"
)

// hardenProcess keeps key material out of core dumps and away from other processes of the same
// user: no core files, and the process is not dumpable (which also blocks ptrace attach by
// non-root users and hides /proc/<pid>/mem). Failures are logged, not fatal: some sandboxes
// forbid these calls.
func hardenProcess(log *slog.Logger, mlock bool) error {
	if mlock {
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
			return fmt.Errorf("mlock: locking memory failed (raise RLIMIT_MEMLOCK or set mlock: false): %w", err)
		}
		log.Info("all process memory is locked (mlockall)")
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("could not mark the process non-dumpable", "err", err)
	}
	return nil
}
