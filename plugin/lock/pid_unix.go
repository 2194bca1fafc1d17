//go:build unix

package lock

import (
	"errors"
	"syscall"
)

// ProcessGone reports whether no process has this pid (signal 0 fails
// with ESRCH; a process of another user still exists: EPERM).
func ProcessGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
