package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// statusDoc is the part of `status -o json` the tests read
// (docs/status-schema.md).
type statusDoc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Cluster    struct {
		OldCNI      string   `json:"oldCNI"`
		OldPodCIDRs []string `json:"oldPodCIDRs"`
		Cilium      struct {
			Installed     bool     `json:"installed"`
			Namespace     string   `json:"namespace"`
			MigrationMode bool     `json:"migrationMode"`
			Policies      string   `json:"policies"`
			PodCIDRs      []string `json:"podCIDRs"`
			NodeConfigs   []string `json:"nodeConfigs"`
		} `json:"cilium"`
	} `json:"cluster"`
	Pods    statusPods `json:"pods"`
	Rollout struct {
		Nodes      int      `json:"nodes"`
		Done       int      `json:"done"`
		InProgress int      `json:"inProgress"`
		Remaining  int      `json:"remaining"`
		DoneNodes  []string `json:"doneNodes"`
		Order      []string `json:"order"`
	} `json:"rollout"`
	Next struct {
		Stage   string `json:"stage"`
		Command string `json:"command"`
	} `json:"next"`
	Nodes []struct {
		Name         string `json:"name"`
		ControlPlane bool   `json:"controlPlane"`
		Phase        string `json:"phase"`
		Migration    string `json:"migration"`
		Cordoned     bool   `json:"cordoned"`
		Selected     bool   `json:"selected"`
		CiliumAgent  struct {
			Pod   string `json:"pod"`
			Ready bool   `json:"ready"`
		} `json:"ciliumAgent"`
		Pods struct {
			OldCIDR int `json:"oldCIDR"`
			NewCIDR int `json:"newCIDR"`
			Other   int `json:"other"`
			NoIP    int `json:"noIP"`
		} `json:"pods"`
	} `json:"nodes"`
	Warnings []string `json:"warnings"`
}

type statusPods struct {
	Total           int    `json:"total"`
	ManagedByCilium int    `json:"managedByCilium"`
	ManagedMethod   string `json:"managedMethod"`
	OldCIDR         int    `json:"oldCIDR"`
	NewCIDR         int    `json:"newCIDR"`
	Other           int    `json:"other"`
	NoIP            int    `json:"noIP"`
}

func (s statusDoc) node(t *testing.T, name string) int {
	t.Helper()
	for i, n := range s.Nodes {
		if n.Name == name {
			return i
		}
	}
	t.Fatalf("status has no node %s", name)
	return -1
}

func fetchStatusDoc(t *testing.T, c *Cluster) statusDoc {
	t.Helper()
	r := c.cli(t, "status", "-o", "json").mustSucceed(t)
	var s statusDoc
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	if s.APIVersion != "cni-migrate.io/v1alpha1" || s.Kind != "MigrationStatus" {
		t.Fatalf("type %s %s", s.APIVersion, s.Kind)
	}
	return s
}

// countPods counts, from the API, what status should report: non
// hostNetwork Running or Pending pods, those on Cilium's pool, and the
// CiliumEndpoints.
func countPods(t *testing.T, ctx context.Context, c *Cluster, pool netip.Prefix) statusPods {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want statusPods
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || (p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending) {
			continue
		}
		want.Total++
		ip, err := netip.ParseAddr(p.Status.PodIP)
		switch {
		case err != nil:
			want.NoIP++
		case pool.IsValid() && pool.Contains(ip):
			want.NewCIDR++
		case netip.MustParsePrefix(fixture.PodSubnet).Contains(ip):
			want.OldCIDR++
		default:
			want.Other++
		}
	}
	if pool.IsValid() {
		eps, err := c.Dynamic.Resource(ciliumsim.CiliumEndpoints).Namespace("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want.ManagedByCilium = len(eps.Items)
	}
	return want
}

// statusSettles waits until status reports the pod counts the API shows
// (the sim creates CiliumEndpoints shortly after the pods run).
func statusSettles(t *testing.T, ctx context.Context, c *Cluster, pool netip.Prefix, method string) statusDoc {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		want := countPods(t, ctx, c, pool)
		want.ManagedMethod = method
		s := fetchStatusDoc(t, c)
		if s.Pods == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status pods %+v, the API shows %+v", s.Pods, want)
		}
		time.Sleep(time.Second)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	const version = "1.18.11"
	c := NewCluster(t, Options{Nodes: Nodes(4)})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := fixture.FlannelCluster(ctx, c.Cluster, "e2e-status"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("10.245.0.0/16")

	t.Run("before Cilium", func(t *testing.T) {
		s := statusSettles(t, ctx, c, netip.Prefix{}, "none")
		if s.Pods.Total == 0 || s.Pods.OldCIDR != s.Pods.Total || s.Pods.NewCIDR != 0 || s.Pods.ManagedByCilium != 0 {
			t.Errorf("pods %+v", s.Pods)
		}
		if s.Cluster.OldCNI != "flannel" || strings.Join(s.Cluster.OldPodCIDRs, ",") != fixture.PodSubnet || s.Cluster.Cilium.Installed {
			t.Errorf("cluster %+v", s.Cluster)
		}
		if s.Next.Stage != "install-cilium" || !strings.Contains(s.Next.Command, "helm install cilium") {
			t.Errorf("next %+v", s.Next)
		}
		if got := strings.Join(s.Rollout.Order, ","); got != "worker-1,worker-2,worker-3,control-plane" || s.Rollout.Done != 0 {
			t.Errorf("rollout %+v", s.Rollout)
		}
		for _, n := range s.Nodes {
			if n.Phase != "none" || n.Migration != "not-started" || n.CiliumAgent.Pod != "" {
				t.Errorf("node %+v", n)
			}
		}
		table := c.cli(t, "status").mustSucceed(t)
		for _, want := range []string{"NODE", "worker-1", "control-plane", "not installed", "Next: kubectl cni-migrate values"} {
			if !strings.Contains(table.Stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, table.Stdout)
			}
		}
	})

	dir := t.TempDir()
	c.cli(t, "values", "--cilium-version", version, "--output-dir", dir).mustSucceed(t)
	if err := fixture.InstallCilium(ctx, c.Cluster, version, filepath.Join(dir, "values-initial.yaml")); err != nil {
		t.Fatal(err)
	}

	t.Run("Cilium installed, no node migrated", func(t *testing.T) {
		s := statusSettles(t, ctx, c, pool, "ciliumEndpoints")
		if s.Pods.ManagedByCilium != 0 || s.Pods.NewCIDR != 0 || s.Pods.OldCIDR != s.Pods.Total {
			t.Errorf("pods %+v", s.Pods)
		}
		// From Flannel, values audit the policies (policy-report).
		if ci := s.Cluster.Cilium; ci.Policies != "audited" {
			t.Errorf("cilium policies %q, want audited", ci.Policies)
		}
		if ci := s.Cluster.Cilium; !ci.Installed || !ci.MigrationMode || ci.Namespace != "kube-system" || strings.Join(ci.PodCIDRs, ",") != pool.String() {
			t.Errorf("cilium %+v", ci)
		}
		if s.Next.Stage != "apply-nodeconfig" || s.Next.Command != "kubectl cni-migrate nodeconfig --apply" {
			t.Errorf("next %+v", s.Next)
		}
		c.cli(t, "nodeconfig", "--apply").mustSucceed(t)
		s = fetchStatusDoc(t, c)
		if s.Next.Command != "kubectl cni-migrate node worker-1" || strings.Join(s.Cluster.Cilium.NodeConfigs, ",") != "cilium-default" {
			t.Errorf("next %+v, nodeconfigs %v", s.Next, s.Cluster.Cilium.NodeConfigs)
		}
		for _, n := range s.Nodes {
			if !n.CiliumAgent.Ready || !strings.HasPrefix(n.CiliumAgent.Pod, "cilium-") || n.Selected {
				t.Errorf("node %+v", n)
			}
		}
	})

	// The worker to migrate: one without a payments pod, whose budget
	// (maxUnavailable 0) blocks any drain.
	target := ""
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		pods, err := fixture.PodsOn(ctx, c.Cluster, w, nil)
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, p := range pods {
			busy = busy || p.Labels["app"] == "payments"
		}
		if !busy {
			target = w
			break
		}
	}
	if target == "" {
		t.Fatal("every worker runs a payments pod")
	}

	t.Run("one worker migrated", func(t *testing.T) {
		if r := c.cli(t, "node", target, "--reboot=skip"); r.Code != 0 {
			t.Logf("kubectl cni-migrate node failed (exit %d); migrating %s by hand as the guide does", r.Code, target)
			migrateByHand(t, ctx, c, target)
		}
		// Pods started on the node from now on get Cilium addresses: the
		// DaemonSet pod the drain left (deleted, recreated) and a new one.
		if err := c.Client.CoreV1().Pods(fixture.WorkloadNamespace).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "app=node-exporter", FieldSelector: "spec.nodeName=" + target}); err != nil {
			t.Fatal(err)
		}
		createPinnedPod(t, ctx, c, target, "status-probe-1")
		waitCiliumAddresses(t, ctx, c, target, pool, 2)

		s := statusSettles(t, ctx, c, pool, "ciliumEndpoints")
		if s.Pods.NewCIDR < 2 || s.Pods.ManagedByCilium < 2 || s.Pods.OldCIDR == 0 {
			t.Errorf("pods %+v", s.Pods)
		}
		n := s.Nodes[s.node(t, target)]
		if n.Phase != "done" || n.Migration != "done" || n.Cordoned || !n.Selected || !n.CiliumAgent.Ready || n.Pods.NewCIDR < 2 || n.Pods.OldCIDR != 0 {
			t.Errorf("%s: %+v", target, n)
		}
		if s.Nodes[0].Name != target {
			t.Errorf("the node done is not listed first: %s", s.Nodes[0].Name)
		}
		if s.Rollout.Done != 1 || strings.Join(s.Rollout.DoneNodes, ",") != target || s.Rollout.Remaining != 3 ||
			s.Rollout.Order[len(s.Rollout.Order)-1] != "control-plane" {
			t.Errorf("rollout %+v", s.Rollout)
		}
		if want := "kubectl cni-migrate node " + s.Rollout.Order[0]; s.Next.Command != want || s.Next.Stage != "migrate-nodes" {
			t.Errorf("next %+v, want %q", s.Next, want)
		}
		for _, other := range s.Nodes[1:] {
			if other.Pods.NewCIDR != 0 || other.Migration != "not-started" {
				t.Errorf("node %+v", other)
			}
		}
		if len(s.Warnings) != 0 {
			t.Errorf("warnings %q", s.Warnings)
		}

		// -v: the requests on stderr, a handful whatever the cluster's size.
		r := c.cli(t, "status", "-v").mustSucceed(t)
		if !strings.Contains(r.Stdout, target) || !strings.Contains(r.Stderr, "API requests: ") || !strings.Contains(r.Stderr, "list pods") {
			t.Errorf("status -v:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
		}
		var requests int
		if _, err := fmt.Sscanf(r.Stderr[strings.Index(r.Stderr, "API requests: "):], "API requests: %d", &requests); err != nil || requests > 12 {
			t.Errorf("%d requests (%v):\n%s", requests, err, r.Stderr)
		}
	})

	t.Run("watch", func(t *testing.T) {
		w := startStatusWatch(t, c)
		first := w.next(t)
		createPinnedPod(t, ctx, c, target, "status-probe-2")
		deadline := time.Now().Add(time.Minute)
		for {
			s := w.next(t)
			if s.Pods.NewCIDR == first.Pods.NewCIDR+1 && s.Pods.ManagedByCilium == first.Pods.ManagedByCilium+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no report with the new pod: first %+v, last %+v", first.Pods, s.Pods)
			}
		}
		w.interrupt(t)
	})
}

// migrateByHand runs the guide's steps for one node, recording the phase
// as `kubectl cni-migrate node` would.
func migrateByHand(t *testing.T, ctx context.Context, c *Cluster, node string) {
	t.Helper()
	steps := [][]string{
		{"cordon", node},
		{"drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2m"},
		{"label", "node", node, ciliumsim.DefaultMigrationLabel + "=true", "--overwrite"},
		{"-n", "kube-system", "delete", "pod", "-l", "k8s-app=cilium", "--field-selector", "spec.nodeName=" + node, "--wait=false"},
		{"-n", "kube-system", "rollout", "status", "ds/cilium", "--timeout=2m"},
		{"annotate", "node", node, "cni-migrate.io/phase=done", "--overwrite"},
		{"uncordon", node},
	}
	for _, s := range steps {
		if out, err := c.Kubectl(ctx, s...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", s, err, out)
		}
	}
}

func createPinnedPod(t *testing.T, ctx context.Context, c *Cluster, node, name string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: fixture.WorkloadNamespace, Name: name, Labels: map[string]string{"app": "status-probe"}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitCiliumAddresses waits until at least n Running pods on the node have
// an address in Cilium's pool.
func waitCiliumAddresses(t *testing.T, ctx context.Context, c *Cluster, node string, pool netip.Prefix, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := fixture.PodsOn(ctx, c.Cluster, node, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, p := range pods {
			if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && !p.Spec.HostNetwork && p.Status.Phase == corev1.PodRunning && pool.Contains(ip) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods on %s with a Cilium address, want %d", got, node, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// statusWatch is a running `kubectl cni-migrate status --watch -o json`.
type statusWatch struct {
	cmd  *exec.Cmd
	docs chan statusDoc
	errs chan error
	done chan error
}

func startStatusWatch(t *testing.T, c *Cluster) *statusWatch {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "cni-migrate", "status", "--watch", "-o", "json")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "NO_COLOR=1",
		"PATH="+filepath.Dir(PluginPath(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stderr = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &statusWatch{cmd: cmd, docs: make(chan statusDoc, 100), errs: make(chan error, 1), done: make(chan error, 1)}
	go func() {
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var s statusDoc
			if err := dec.Decode(&s); err != nil {
				if err != io.EOF {
					w.errs <- err
				}
				close(w.docs)
				w.done <- cmd.Wait()
				return
			}
			w.docs <- s
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return w
}

func (w *statusWatch) next(t *testing.T) statusDoc {
	t.Helper()
	select {
	case s, ok := <-w.docs:
		if !ok {
			t.Fatalf("status --watch ended: %v", <-w.done)
		}
		return s
	case err := <-w.errs:
		t.Fatalf("status --watch printed something that is not a JSON object: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("status --watch printed nothing for a minute")
	}
	return statusDoc{}
}

// interrupt sends Ctrl-C and checks that the watch ends with exit 0.
func (w *statusWatch) interrupt(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range w.docs {
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("status --watch after Ctrl-C: %v (want exit 0)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status --watch did not stop on Ctrl-C")
	}
}
