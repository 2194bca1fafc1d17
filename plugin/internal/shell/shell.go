// Package shell quotes words for a POSIX shell, for the commands the
// plugin prints (scripts, resume hints, the helm upgrade).
package shell

import "strings"

// Quote quotes s for a POSIX shell: unchanged when it holds only safe
// characters, else in single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes and joins argv for a POSIX shell.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
		if i == 0 && q[i] == a && strings.Contains(a, "=") {
			// NAME=value in command position would be an assignment.
			q[i] = "'" + a + "'"
		}
	}
	return strings.Join(q, " ")
}
