package status

import (
	"fmt"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Requests counts the API requests made through a transport wrapped with
// Wrap (rest.Config.Wrap), how long they took (until their body was read
// or closed) and how many bytes they returned. Watches are counted apart:
// they last as long as the command.
type Requests struct {
	mu sync.Mutex
	// trace, when set, gets a line per finished request.
	trace io.Writer
	kinds map[string]*RequestKind
}

// RequestKind is the count of one kind of request ("list pods").
type RequestKind struct {
	Kind     string
	Count    int
	Errors   int
	Duration time.Duration
	Bytes    int64
	Watch    bool
}

// NewRequests returns a counter. With trace set, each finished request is
// also written there (method, path, status, duration, bytes).
func NewRequests(trace io.Writer) *Requests {
	return &Requests{trace: trace, kinds: map[string]*RequestKind{}}
}

// Wrap is a rest.Config WrapTransport.
func (r *Requests) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &countingTransport{next: rt, r: r}
}

type countingTransport struct {
	next http.RoundTripper
	r    *Requests
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	kind, watch := RequestKindOf(req.Method, req.URL.Path, req.URL.Query().Get("watch"))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.r.done(kind, watch, req, "error: "+err.Error(), start, 0, true)
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, finish: func(n int64) {
		// A 404 is an answer (an API not served, an object not there).
		t.r.done(kind, watch, req, resp.Status, start, n, resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound)
	}}
	return resp, nil
}

func (r *Requests) done(kind string, watch bool, req *http.Request, status string, start time.Time, n int64, failed bool) {
	d := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kinds[kind]
	if k == nil {
		k = &RequestKind{Kind: kind, Watch: watch}
		r.kinds[kind] = k
	}
	k.Count++
	k.Duration += d
	k.Bytes += n
	if failed {
		k.Errors++
	}
	if r.trace != nil {
		fmt.Fprintf(r.trace, "%s %s %s in %s, %s\n", req.Method, req.URL.RequestURI(), status, d.Round(time.Millisecond), byteSize(n))
	}
}

// countingBody counts bytes and reports once, at EOF or Close.
type countingBody struct {
	io.ReadCloser
	n      int64
	once   sync.Once
	finish func(int64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.once.Do(func() { b.finish(b.n) })
	}
	return n, err
}

func (b *countingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.finish(b.n) })
	return err
}

// RequestKindOf names a request for the summary: "list pods", "get
// configmaps", "watch nodes", "discovery /apis/cilium.io/v2".
func RequestKindOf(method, path, watchParam string) (kind string, watch bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return "discovery " + path, false
	}
	if len(rest) == 0 {
		return "discovery " + path, false
	}
	if rest[0] == "watch" { // the old /watch/ paths
		rest, watchParam = rest[1:], "true"
	}
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) != 2 {
		rest = rest[2:]
	}
	resource := rest[0]
	named := len(rest) >= 2
	if len(rest) >= 3 {
		resource += "/" + rest[2]
	}
	verb := strings.ToLower(method)
	switch {
	case watchParam == "true" || watchParam == "1":
		return "watch " + resource, true
	case method == http.MethodGet && !named:
		verb = "list"
	case method == http.MethodGet:
		verb = "get"
	}
	return verb + " " + resource, false
}

// Summary is what Requests counted.
type Summary struct {
	// Requests excludes watches; Duration is the sum of their durations.
	Requests int
	Errors   int
	Duration time.Duration
	Bytes    int64
	Watches  int
	Kinds    []RequestKind
}

// Summary returns the counts so far, the kinds sorted by time spent.
func (r *Requests) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s Summary
	for _, k := range r.kinds {
		s.Kinds = append(s.Kinds, *k)
		if k.Watch {
			s.Watches += k.Count
			continue
		}
		s.Requests += k.Count
		s.Errors += k.Errors
		s.Duration += k.Duration
		s.Bytes += k.Bytes
	}
	sort.Slice(s.Kinds, func(i, j int) bool {
		a, b := s.Kinds[i], s.Kinds[j]
		if a.Watch != b.Watch {
			return !a.Watch
		}
		if a.Duration != b.Duration {
			return a.Duration > b.Duration
		}
		return a.Kind < b.Kind
	})
	return s
}

// Print writes the summary: one line of totals, then one per kind.
func (s Summary) Print(w io.Writer, wall time.Duration) {
	fmt.Fprintf(w, "API requests: %d in %s (sum of request times), %s received, %d failed; wall time %s",
		s.Requests, s.Duration.Round(time.Millisecond), byteSize(s.Bytes), s.Errors, wall.Round(time.Millisecond))
	if s.Watches > 0 {
		fmt.Fprintf(w, "; %d watch %s", s.Watches, output.Plural(s.Watches, "request", "requests"))
	}
	fmt.Fprintln(w)
	for _, k := range s.Kinds {
		if k.Watch {
			fmt.Fprintf(w, "  %-40s %5d  %s\n", k.Kind, k.Count, byteSize(k.Bytes))
			continue
		}
		fmt.Fprintf(w, "  %-40s %5d  %10s  %s\n", k.Kind, k.Count, k.Duration.Round(time.Millisecond), byteSize(k.Bytes))
	}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
