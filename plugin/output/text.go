package output

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Plural returns one when n is 1, else many.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// List joins up to max items and says how many more there are:
// "a, b, c and 2 more".
func List(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}

// NewDedupWriter returns a writer that passes each distinct line on to w
// once (kubectl's drain helper repeats "evicting pod" and "will retry after
// 5s" for every attempt). It is safe for concurrent use.
func NewDedupWriter(w io.Writer) io.Writer {
	return &dedupWriter{w: w, seen: map[string]bool{}}
}

type dedupWriter struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	seen map[string]bool
}

func (d *dedupWriter) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf = append(d.buf, b...)
	for {
		i := strings.IndexByte(string(d.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(d.buf[:i+1])
		d.buf = d.buf[i+1:]
		if !d.seen[line] {
			d.seen[line] = true
			if _, err := io.WriteString(d.w, line); err != nil {
				return len(b), err
			}
		}
	}
}
