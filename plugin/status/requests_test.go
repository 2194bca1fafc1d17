package status

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func TestRequestKindOf(t *testing.T) {
	for _, tc := range []struct {
		method, path, watch string
		want                string
		wantWatch           bool
	}{
		{"GET", "/api/v1/pods", "", "list pods", false},
		{"GET", "/api/v1/nodes", "true", "watch nodes", true},
		{"GET", "/api/v1/namespaces/kube-system/configmaps/cilium-config", "", "get configmaps", false},
		{"GET", "/api/v1/namespaces/kube-system/configmaps", "1", "watch configmaps", true},
		{"GET", "/api/v1/namespaces", "", "list namespaces", false},
		{"GET", "/api/v1/namespaces/demo", "", "get namespaces", false},
		{"GET", "/apis/apps/v1/daemonsets", "", "list daemonsets", false},
		{"GET", "/apis/cilium.io/v2/ciliumendpoints", "", "list ciliumendpoints", false},
		{"GET", "/apis/cilium.io/v2/namespaces/kube-system/ciliumnodeconfigs", "", "list ciliumnodeconfigs", false},
		{"GET", "/apis/cilium.io/v2", "", "discovery /apis/cilium.io/v2", false},
		{"GET", "/version", "", "discovery /version", false},
		{"PATCH", "/api/v1/nodes/worker-1", "", "patch nodes", false},
		{"POST", "/api/v1/namespaces/demo/pods/web-1/eviction", "", "post pods/eviction", false},
		{"GET", "/api/v1/watch/pods", "", "watch pods", true},
	} {
		got, w := RequestKindOf(tc.method, tc.path, tc.watch)
		if got != tc.want || w != tc.wantWatch {
			t.Errorf("%s %s watch=%q: %q %v, want %q %v", tc.method, tc.path, tc.watch, got, w, tc.want, tc.wantWatch)
		}
	}
}

// TestRequestsCount runs a typed client against a test server through the
// counting transport.
func TestRequestsCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/pods":
			_, _ = io.WriteString(w, `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"}}]}`)
		case "/api/v1/nodes/missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}`)
		}
	}))
	defer srv.Close()
	var trace bytes.Buffer
	reqs := NewRequests(&trace)
	cfg := &rest.Config{Host: srv.URL}
	cfg.Wrap(reqs.Wrap)
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 500}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kc.CoreV1().Nodes().Get(ctx, "missing", metav1.GetOptions{}); err == nil {
		t.Fatal("no error for a missing node")
	}
	_, _ = kc.CoreV1().ConfigMaps("x").List(ctx, metav1.ListOptions{}) // a 500: counted as failed (client-go retries only with Retry-After)

	s := reqs.Summary()
	if s.Requests != 5 || s.Errors != 1 || s.Watches != 0 || s.Bytes == 0 || s.Duration <= 0 {
		t.Errorf("summary %+v", s)
	}
	if len(s.Kinds) != 3 {
		t.Fatalf("kinds %+v", s.Kinds)
	}
	byKind := map[string]RequestKind{}
	for _, k := range s.Kinds {
		byKind[k.Kind] = k
	}
	if byKind["list pods"].Count != 3 || byKind["get nodes"].Count != 1 || byKind["get nodes"].Errors != 0 || byKind["list configmaps"].Errors != 1 {
		t.Errorf("by kind %+v", byKind)
	}
	if lines := strings.Count(trace.String(), "\n"); lines != 5 || !strings.Contains(trace.String(), "GET /api/v1/pods?limit=500 200 OK in ") {
		t.Errorf("trace:\n%s", trace.String())
	}
	var out bytes.Buffer
	s.Print(&out, 2*time.Second)
	if !strings.HasPrefix(out.String(), "API requests: 5 in ") || !strings.Contains(out.String(), "wall time 2s") || !strings.Contains(out.String(), "list pods") {
		t.Errorf("print:\n%s", out.String())
	}
}

func TestRendererSkipsRepeats(t *testing.T) {
	r := Assemble(midMigration(t))
	now := func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		format string
		clear  bool
		check  func(string) bool
	}{
		{"", false, func(s string) bool { return strings.Count(s, "CLUSTER") == 2 && !strings.Contains(s, clearScreen) }},
		{"", true, func(s string) bool {
			return strings.Count(s, clearScreen) == 2 && strings.Contains(s, "updated 10:00:00 (Ctrl-C to stop)")
		}},
		{"json", true, func(s string) bool {
			return strings.Count(s, `"kind": "MigrationStatus"`) == 2 && !strings.Contains(s, clearScreen)
		}},
		{"yaml", false, func(s string) bool {
			return strings.Count(s, "kind: MigrationStatus") == 2 && strings.Count(s, "---\n") == 1
		}},
	} {
		var b bytes.Buffer
		rd, err := NewRenderer(&b, tc.format, output.NewStyle(&b, ""), tc.clear, now)
		if err != nil {
			t.Fatal(err)
		}
		changed := Assemble(midMigration(t))
		changed.Pods.Total++
		for _, rep := range []*Report{r, r, changed, changed} {
			if err := rd.Emit(rep); err != nil {
				t.Fatal(err)
			}
		}
		if !tc.check(b.String()) {
			t.Errorf("format %q clear %v:\n%s", tc.format, tc.clear, b.String())
		}
	}
	if _, err := NewRenderer(io.Discard, "wide", output.Style{}, false, now); err == nil {
		t.Error("format wide accepted")
	}
}
