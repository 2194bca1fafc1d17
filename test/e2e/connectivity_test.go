package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// probeDouble stands in for the probe pods' netexec /dial (kwok's pods
// cannot answer): the plugin sends each check to it
// (KUBECTL_CNI_MIGRATE_PROBE_ENDPOINT) with the asking pod and node, and it
// answers as netexec does, failing the checks fail() says fail.
type probeDouble struct {
	srv    *http.Server
	url    string
	client kubernetes.Interface
	mu     sync.Mutex
	// fail says whether a check from node src to the pod at host fails,
	// and with what error ("" passes).
	fail   func(ctx context.Context, src, host, protocol string) string
	served int
}

func newProbeDouble(t *testing.T, client kubernetes.Interface) *probeDouble {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &probeDouble{url: "http://" + ln.Addr().String(), client: client}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.dial), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

func (d *probeDouble) setFail(f func(ctx context.Context, src, host, protocol string) string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = f
}

func (d *probeDouble) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.served
}

func (d *probeDouble) dial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d.mu.Lock()
	d.served++
	fail := d.fail
	d.mu.Unlock()
	if r.URL.Path != "/dial" || q.Get("pod") == "" || q.Get("host") == "" || q.Get("request") == "" {
		http.Error(w, "want /dial?pod=&node=&host=&port=&protocol=&request=", http.StatusBadRequest)
		return
	}
	out := map[string][]string{}
	if fail != nil {
		if e := fail(r.Context(), q.Get("node"), q.Get("host"), q.Get("protocol")); e != "" {
			out["errors"] = []string{e}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
	}
	req := q.Get("request")
	switch {
	case strings.HasPrefix(req, "echo "):
		out["responses"] = []string{strings.TrimPrefix(req, "echo ")}
	case req == "clientip":
		out["responses"] = []string{"192.0.2.1:40000"}
	default:
		out["responses"] = []string{"cni-migrate-probe"}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// nodeOfIP finds the node of the probe pod with address ip.
func nodeOfIP(ctx context.Context, c kubernetes.Interface, ip string) string {
	pods, err := c.CoreV1().Pods("cni-migrate-connectivity").List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == ip {
			return p.Spec.NodeName
		}
	}
	return ""
}

// connectivityDoc is the part of `connectivity -o json` the test reads.
type connectivityDoc struct {
	Kind   string `json:"kind"`
	Green  bool   `json:"green"`
	Probes []struct {
		Node  string `json:"node"`
		Ready bool   `json:"ready"`
	} `json:"probes"`
	Pairs []struct {
		SrcNode string   `json:"srcNode"`
		DstNode string   `json:"dstNode"`
		Failed  []string `json:"failed"`
	} `json:"pairs"`
	Failures []struct {
		Check   string `json:"check"`
		SrcNode string `json:"srcNode"`
		DstNode string `json:"dstNode"`
		Error   string `json:"error"`
	} `json:"failures"`
	Results []struct {
		Check string `json:"check"`
	} `json:"results"`
}

// TestConnectivity runs connectivity and a gated rollout against a real API
// server with kwok nodes: the probe objects (made once, then reused, then
// cleaned up), the matrix and its exit codes, status's summary of it, a
// node --gate connectivity, and a rollout --gate connectivity that stops
// after the batch whose node the double breaks, leaving the other nodes
// untouched, then resumes.
func TestConnectivity(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := migrationCluster(t, 3)
	relaxPDBs(t, ctx, c, "payments", "db")
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	d := newProbeDouble(t, c.Client)
	env := []string{"KUBECTL_CNI_MIGRATE_PROBE_ENDPOINT=" + d.url}
	run := func(args ...string) nodeRun {
		t.Helper()
		return startPlugin(t, c, env, args...).wait(t, 10*time.Minute)
	}

	t.Run("bad input", func(t *testing.T) {
		run("connectivity", "--mtu", "10").expect(t, 2, "--mtu 10 is not an MTU")
		run("connectivity", "--cleanup", "--watch").expect(t, 2, "--cleanup and --watch")
		run("rollout", "--gate", "ping").expect(t, 2, `--gate "ping" is not a gate`)
		run("rollout", "--gate", "connectivity", "--gate-settle", "5m", "--gate-timeout", "1m").expect(t, 2, "could never pass")
		run("node", "worker-1", "--gate", "connectivity", "--dry-run=server").expect(t, 2, "--gate does not apply to a dry run")
	})

	t.Run("forbidden", func(t *testing.T) {
		kc := filepath.Join(t.TempDir(), "alice.kubeconfig")
		if _, _, err := c.WriteClientKubeconfig(kc, "alice", nil, c.Server); err != nil {
			t.Fatal(err)
		}
		r := startPlugin(t, c, append(env, "KUBECONFIG="+kc), "connectivity").wait(t, time.Minute)
		r.expect(t, 8, "running the connectivity probes needs permission to get namespaces", "docs/rbac.yaml")
		if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "cni-migrate-connectivity", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused run made the namespace: %v", err)
		}
	})

	t.Run("green", func(t *testing.T) {
		r := run("connectivity", "-o", "json").expect(t, 0, "namespace/cni-migrate-connectivity created", "daemonset.apps/cni-migrate-probe created", "service/cni-migrate-probe created")
		var m connectivityDoc
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if m.Kind != "ConnectivityMatrix" || !m.Green || len(m.Probes) != 3 || len(m.Failures) != 0 {
			t.Errorf("matrix: %+v", m)
		}
		// 3 probes: 2 peers x (pod, mtu) + service, dns, apiserver each.
		if len(m.Results) != 3*7 {
			t.Errorf("%d results, want 21", len(m.Results))
		}
		ds, err := c.Client.AppsV1().DaemonSets("cni-migrate-connectivity").Get(ctx, "cni-migrate-probe", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := ds.Spec.Template.Spec
		if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Containers[0].Image != "registry.k8s.io/e2e-test-images/agnhost:2.56" {
			t.Errorf("probe DaemonSet: tolerations %+v image %s", spec.Tolerations, spec.Containers[0].Image)
		}
		run("connectivity").expect(t, 0, "daemonset.apps/cni-migrate-probe reused")
		var st struct {
			Connectivity *struct {
				Green   bool   `json:"green"`
				Summary string `json:"summary"`
			} `json:"connectivity"`
		}
		s := run("status", "-o", "json").expect(t, 0)
		if err := json.Unmarshal([]byte(s.stdout), &st); err != nil || st.Connectivity == nil || !st.Connectivity.Green {
			t.Errorf("status connectivity %+v (%v)\n%s", st.Connectivity, err, s.stdout)
		}
	})

	t.Run("a failing pair", func(t *testing.T) {
		d.setFail(func(ctx context.Context, src, host, protocol string) string {
			if src == "worker-2" && protocol == "udp" && nodeOfIP(ctx, c.Client, host) == "worker-1" {
				return "reading from udp connection failed. err:'read udp: i/o timeout'"
			}
			return ""
		})
		defer d.setFail(nil)
		r := run("connectivity").expect(t, 19, "connectivity: FAILING", "mtu: worker-2 (", ") -> worker-1 (")
		if !strings.Contains(r.stdout, "FAIL mtu") || !strings.Contains(r.stdout, "i/o timeout") {
			t.Errorf("the matrix does not show the failing pair:\n%s", r.stdout)
		}
		s := run("status").expect(t, 0)
		if !strings.Contains(s.stdout, "Connectivity: FAILING") {
			t.Errorf("status does not show the failing matrix:\n%s", s.stdout)
		}
	})

	t.Run("gated node and rollout", func(t *testing.T) {
		reboot := rebootScript(t) + " {{.Node}}"
		gate := []string{"--gate", "connectivity", "--gate-settle", "2s", "--gate-timeout", "15s", "--gate-interval", "1s"}
		run(append([]string{"node", "worker-1", "--reboot-command", reboot}, gate...)...).expect(t, 0,
			"gate before worker-1: green", "gate after worker-1: green")
		// The pod checks into worker-2 fail once it is migrated: the gate
		// after its batch must stop the rollout there.
		d.setFail(func(ctx context.Context, src, host, protocol string) string {
			if protocol != "http" || src == "worker-2" || nodeOfIP(ctx, c.Client, host) != "worker-2" {
				return ""
			}
			n, err := c.Client.CoreV1().Nodes().Get(ctx, "worker-2", metav1.GetOptions{})
			if err == nil && n.Annotations["cni-migrate.io/phase"] == "done" {
				return "Get \"http://" + host + ":8080/clientip\": dial tcp " + host + ":8080: i/o timeout"
			}
			return ""
		})
		r := run(append([]string{"rollout", "--batch", "1", "--reboot-command", reboot, "-o", "json"}, gate...)...)
		r.expect(t, 19, "gate before the first batch: green", "connectivity gate after batch 1/2: not green for 2s within 15s", "-> worker-2 (")
		var s rolloutSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		got := map[string]string{}
		for _, n := range s.Nodes {
			got[n.Name] = n.Result + "/" + n.PhaseAfter
		}
		if s.Result != "connectivity-failed" || got["worker-2"] != "migrated/done" || got["control-plane"] != "not-started/" {
			t.Errorf("summary: result %s, nodes %v", s.Result, got)
		}
		if n := getNode(t, ctx, c, "control-plane"); n.Spec.Unschedulable || n.Annotations["cni-migrate.io/phase"] != "" {
			t.Errorf("control-plane was touched: unschedulable %v, phase %q", n.Spec.Unschedulable, n.Annotations["cni-migrate.io/phase"])
		}
		// Healed, the same command resumes and finishes.
		d.setFail(nil)
		before := d.count()
		run(append([]string{"rollout", "--batch", "1", "--reboot-command", reboot}, gate...)...).expect(t, 0, "gate after batch 1/1: green")
		t.Logf("the resumed rollout's gates made %d checks", d.count()-before)
		if st := status(t, c); st.Rollout.Done != 3 {
			t.Errorf("after the resumed rollout: %+v", st.Rollout)
		}
	})

	t.Run("cleanup", func(t *testing.T) {
		run("connectivity", "--cleanup").expect(t, 0, "namespace/cni-migrate-connectivity deleted")
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, err := c.Client.CoreV1().Namespaces().Get(ctx, "cni-migrate-connectivity", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("namespace still there 2m after cleanup: %v", err)
			}
			time.Sleep(time.Second)
		}
		run("connectivity", "--cleanup").expect(t, 0, "nothing to remove")
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-ours"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		run("connectivity", "--cleanup", "--probe-namespace", "not-ours").expect(t, 15, "was not made by kubectl cni-migrate connectivity")
	})
}
