package lock

import (
	"fmt"
	"regexp"
	"strconv"
)

// Identity names a run in the lease: "user@host (pid N, command)".
func Identity(user, host string, pid int, command string) string {
	return fmt.Sprintf("%s@%s (pid %d, %s)", user, host, pid, command)
}

var identityRE = regexp.MustCompile(`^[^@]*@(.+) \(pid ([0-9]+)[,)]`)

// ParseIdentity returns the host and pid of an Identity (ok false when s is
// not one, e.g. written by another tool).
func ParseIdentity(s string) (host string, pid int, ok bool) {
	m := identityRE.FindStringSubmatch(s)
	if m == nil {
		return "", 0, false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	return m[1], pid, true
}

// DeadHere returns an Options.Dead for a run on host: a holder that ran on
// the same host, as another process, and whose process is gone is dead (a
// run killed outright, SIGKILL or a closed terminal, leaves its lease
// behind; the next run on that host need not wait for it to expire).
// gone reports whether a process no longer exists (ProcessGone).
func DeadHere(host string, self int, gone func(pid int) bool) func(holder string) bool {
	return func(holder string) bool {
		h, pid, ok := ParseIdentity(holder)
		return ok && host != "" && h == host && pid != self && gone(pid)
	}
}
