//go:build unix

package lock

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// ProcessGone reports whether no process has this pid (signal 0 fails
// with ESRCH; a process of another user still exists: EPERM). A zombie,
// dead but not yet reaped by its parent (or init, for an orphan), is gone
// too: it runs no more. Where /proc tells (Linux), it is asked.
func ProcessGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	return zombie(pid)
}

// zombie reports whether /proc says pid is a zombie (state Z, or X: dead).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}
