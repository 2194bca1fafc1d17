// Package lab runs a real-datapath Kubernetes cluster on one machine: the
// control plane (from package cluster) in a "fabric" network namespace
// that holds the lab's bridge, and real nodes, each a network namespace
// with its own mount, UTS and PID namespaces running containerd, runc and a
// real kubelet. Images are assembled from locally built binaries and a
// Debian rootfs (hack/datapath/build.sh) and imported into each node's
// containerd: no registry is involved. Every address the lab uses exists
// only inside the namespaces it creates; the host's network is untouched
// but for the API server forwarder on 127.0.0.1.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// NodeSpec names a node of the lab.
type NodeSpec struct {
	Name         string
	ControlPlane bool
}

// Options configure Start.
type Options struct {
	// Dir is the lab's work directory (required; kept after Close, but for
	// the nodes' containerd state: images and containers).
	Dir string
	// Cache is the tool cache (default cluster.DefaultCache()).
	Cache string
	// Nodes default to control-plane, worker-1, worker-2.
	Nodes []NodeSpec
	// CiliumVersion selects the Cilium build whose images are made.
	CiliumVersion string
	// Calico adds Calico's images (calico-node, its CNI installer,
	// kube-controllers).
	Calico bool
	// ProbeBinary is the monitor's probe program (test/e2e/cmd/labprobe),
	// put into the images as /usr/local/bin/labprobe.
	ProbeBinary string
	// PluginBinary is the plugin (kubectl-cni_migrate), put into the
	// image Images.Plugin.
	PluginBinary string
	Logf         func(format string, args ...any)
	// Created, when set, gets the lab before it starts anything, so that
	// an interrupt while it starts can still close it.
	Created func(*Lab)
}

// Lab is a running real-datapath cluster.
type Lab struct {
	Dir     string
	Cluster *cluster.Cluster
	Nodes   []*Node
	// GatewayIP is the bridge's address in the fabric namespace: the nodes'
	// default gateway (which leads nowhere) and the API server's address.
	GatewayIP string
	// DNSServiceIP is the cluster DNS Service address.
	DNSServiceIP string
	// MonitorDir is bind-mounted at /var/lib/lab-monitor on every node.
	MonitorDir string
	// Socket is the lab controller's unix socket (see RebootCommand).
	Socket string

	opts   Options
	owner  int
	images archives
	// imagesRoot is the containerd root with the archive imported that
	// seeds each node's (imageroot.go); empty when the cache is on
	// another file system than the lab (the nodes import the archive).
	imagesRoot string
	srv        *http.Server
	stopRoutes context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
}

// The lab network: nodes at .11, .12, ... of LabNetwork.
const (
	labNetwork = "192.168.100"
	gatewayIP  = labNetwork + ".1"
)

func (l *Lab) logf(format string, args ...any) {
	if l.opts.Logf != nil {
		l.opts.Logf(format, args...)
	}
}

func (l *Lab) fabricNS() string { return fmt.Sprintf("%s%d-fab", namePrefix, l.owner) }

func (l *Lab) bin(name string) string { return filepath.Join(l.opts.Cache, "datapath", "bin", name) }

// Node returns the named node.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Start builds the lab: fabric namespace and bridge, control plane, images,
// nodes (booted, kubelets registering). On error everything is torn down.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Dir == "" {
		return nil, errors.New("lab: Dir is required")
	}
	if opts.Cache == "" {
		opts.Cache = cluster.DefaultCache()
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = []NodeSpec{{"control-plane", true}, {"worker-1", false}, {"worker-2", false}}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root (network namespaces, mounts, cgroups)")
	}
	for _, b := range []string{"kubelet", "kube-proxy", "agnhost", "flanneld", "flannel", "coredns"} {
		if _, err := os.Stat(filepath.Join(opts.Cache, "datapath", "bin", b)); err != nil {
			return nil, fmt.Errorf("lab: %s missing (run `make datapath-tools`): %w", b, err)
		}
	}
	for _, b := range []string{"containerd", "runc", "ctr", "nsenter", "unshare", "ip"} {
		if _, err := execLookPath(b); err != nil {
			return nil, fmt.Errorf("lab: %s missing (run `make datapath-tools`, which installs the Debian packages): %w", b, err)
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	staleLabs(ctx, filepath.Dir(dir))
	if err := checkDisk(dir, len(opts.Nodes), newestArchive(opts.Cache), sameFS(filepath.Join(opts.Cache, "datapath"), filepath.Dir(dir))); err != nil {
		return nil, err
	}
	l := &Lab{
		Dir: dir, GatewayIP: gatewayIP, DNSServiceIP: "10.96.0.10",
		MonitorDir: filepath.Join(dir, "monitor"), Socket: filepath.Join(dir, "lab.sock"),
		opts: opts, owner: os.Getpid(),
	}
	if opts.Created != nil {
		opts.Created(l)
	}
	if err := l.start(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) start(ctx context.Context) error {
	t0 := time.Now()
	if err := os.MkdirAll(l.MonitorDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.Dir, ownerFile), []byte(strconv.Itoa(l.owner)), 0o644); err != nil {
		return err
	}
	fab := l.fabricNS()
	if err := addNetNS(ctx, fab); err != nil {
		return err
	}
	for _, s := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"addr", "add", l.GatewayIP + "/24", "dev", "br0"},
		{"link", "set", "br0", "up"},
	} {
		if err := ipIn(ctx, fab, s...); err != nil {
			return err
		}
	}
	c, err := cluster.Start(ctx, cluster.Options{
		Cache:            l.opts.Cache,
		Dir:              filepath.Join(l.Dir, "control-plane"),
		NetNS:            nsPath(fab),
		AdvertiseAddress: l.GatewayIP,
		NoKwok:           true,
		// Real kubelets report every 5 s; keep the default grace.
		ExtraControllerManagerArgs: []string{"--node-monitor-grace-period=40s"},
		Logf:                       l.opts.Logf,
	})
	if err != nil {
		return err
	}
	l.Cluster = c
	c.SetImageOverrides(ImageOverrides)
	l.logf("lab: control plane ready in the fabric namespace after %v", time.Since(t0).Round(time.Millisecond))

	if l.images, err = buildImages(l.opts.Cache, l.opts.CiliumVersion, l.opts.Calico, l.opts.ProbeBinary, l.opts.PluginBinary, l.logf); err != nil {
		return err
	}
	if sameFS(filepath.Dir(l.images.Base), l.Dir) {
		if l.imagesRoot, err = imageRoot(ctx, l.images.Base, l.images.FP, l.Dir, l.logf); err != nil {
			return err
		}
	}
	if err := l.serve(); err != nil {
		return err
	}
	for i, spec := range l.opts.Nodes {
		n := &Node{
			Name: spec.Name, ControlPlane: spec.ControlPlane, Index: i,
			IP: fmt.Sprintf("%s.%d", labNetwork, 11+i), Dir: filepath.Join(l.Dir, "nodes", spec.Name), lab: l,
		}
		l.Nodes = append(l.Nodes, n)
		if err := n.prepare(); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := n.boot(ctx); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if err := l.WaitRegistered(ctx, 5*time.Minute); err != nil {
		return err
	}
	if err := l.markControlPlane(ctx); err != nil {
		return err
	}
	rctx, stopRoutes := context.WithCancel(context.Background())
	l.stopRoutes = stopRoutes
	go l.routePods(rctx)
	l.logf("lab: %d nodes registered after %v", len(l.Nodes), time.Since(t0).Round(time.Millisecond))
	return nil
}

// markControlPlane labels and taints the control-plane nodes as kubeadm
// does (node-role.kubernetes.io/control-plane, NoSchedule).
func (l *Lab) markControlPlane(ctx context.Context) error {
	for _, n := range l.Nodes {
		if !n.ControlPlane {
			continue
		}
		patch := `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}},"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}}`
		if _, err := l.Cluster.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("mark %s as control plane: %w", n.Name, err)
		}
	}
	return nil
}

// WaitRegistered waits until every node's kubelet has registered its Node.
func (l *Lab) WaitRegistered(ctx context.Context, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range l.Nodes {
			if !n.Running() {
				return false, fmt.Errorf("node %s: init exited (see %s)", n.Name, filepath.Join(n.Dir, "logs"))
			}
			if _, err := l.Cluster.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// WaitReady waits until every node is Ready (its CNI works).
func (l *Lab) WaitReady(ctx context.Context, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range l.Nodes {
			node, err := l.Cluster.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			ready := false
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					ready = c.Status == corev1.ConditionTrue
					last = fmt.Sprintf("%s: %s %s", n.Name, c.Reason, c.Message)
				}
			}
			if !ready {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not Ready (last: %s): %w", last, err)
	}
	return nil
}

// RebootCommand is a --reboot-command for the plugin that reboots a lab
// node through the lab controller.
func (l *Lab) RebootCommand() string {
	return fmt.Sprintf("curl -fsS --max-time 120 --unix-socket %s -X POST http://lab/nodes/{{.Node}}/reboot", l.Socket)
}

// OnNodeCommand is a shell command for the plugin's --reboot-command that
// first runs script as root on the node (through the lab controller, as
// `ssh NODE sudo` would on a real cluster) and then reboots it. script may
// use the plugin's template ({{.Node}}) and must not contain a quote. The
// plugin runs a command without a shell, so the pipeline is sh -c's.
func (l *Lab) OnNodeCommand(script string) string {
	return fmt.Sprintf(`sh -c "printf %%s '%s' | curl -fsS --max-time 60 --unix-socket %s -X POST --data-binary @- http://lab/nodes/{{.Node}}/exec && %s"`,
		script, l.Socket, l.RebootCommand())
}

// serve starts the lab controller on its unix socket: POST
// /nodes/NAME/reboot reboots a node (it answers once the node is down and
// its new boot has begun).
func (l *Lab) serve() error {
	_ = os.Remove(l.Socket)
	ln, err := net.Listen("unix", l.Socket)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nodes/{name}/reboot", func(w http.ResponseWriter, r *http.Request) {
		n := l.Node(r.PathValue("name"))
		if n == nil {
			http.Error(w, "no such node", http.StatusNotFound)
			return
		}
		l.logf("lab: rebooting %s", n.Name)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Minute)
		defer cancel()
		if err := n.Reboot(ctx); err != nil {
			l.logf("lab: reboot %s: %v", n.Name, err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s rebooting (boot %d)\n", n.Name, n.Boots())
	})
	// POST /nodes/NAME/exec runs the request's body with bash as root on
	// the node (what `ssh NODE sudo bash` is on a real cluster) and answers
	// its output; a failure is a 500 with the output.
	mux.HandleFunc("POST /nodes/{name}/exec", func(w http.ResponseWriter, r *http.Request) {
		n := l.Node(r.PathValue("name"))
		if n == nil {
			http.Error(w, "no such node", http.StatusNotFound)
			return
		}
		script, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
		defer cancel()
		l.logf("lab: on %s: %s", n.Name, script)
		out, err := n.Exec(ctx, "bash", "-c", string(script))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(out)
	})
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return nil
}

// Close tears the lab down: nodes (every process in their namespaces),
// the control plane, the fabric namespace, the cgroups. Safe to call more
// than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var errs []error
		if l.srv != nil {
			_ = l.srv.Close()
		}
		if l.stopRoutes != nil {
			l.stopRoutes()
		}
		t0 := time.Now()
		// Nodes halt in parallel: each waits for its init and namespace.
		herrs := make([]error, len(l.Nodes))
		var wg sync.WaitGroup
		for i, n := range l.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); herrs[i] = n.halt(ctx) }()
		}
		wg.Wait()
		errs = append(errs, herrs...)
		// A kept directory keeps the logs, not 3 GB of images per node.
		for i, n := range l.Nodes {
			if herrs[i] == nil {
				errs = append(errs, n.prune())
			}
		}
		if l.Cluster != nil {
			if err := l.Cluster.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
		fab := l.fabricNS()
		if err := killNetNS(ctx, nsPath(fab), 30*time.Second); err != nil {
			errs = append(errs, err)
		}
		if err := delNetNS(ctx, fab); err != nil {
			errs = append(errs, err)
		}
		// A node's namespace made before the node joined l.Nodes (an
		// interrupt while the lab starts).
		left, _ := filepath.Glob(nsPath(fmt.Sprintf("%s%d-*", namePrefix, l.owner)))
		for _, p := range left {
			if err := killNetNS(ctx, p, 30*time.Second); err != nil {
				errs = append(errs, err)
			}
			if err := delNetNS(ctx, filepath.Base(p)); err != nil {
				errs = append(errs, err)
			}
		}
		for _, ctrl := range cgroupControllers() {
			removeCgroupTree(filepath.Join(cgroupRoot, ctrl, fmt.Sprintf("%s%d", namePrefix, l.owner)))
		}
		l.closeErr = errors.Join(errs...)
		l.logf("lab: torn down in %v", time.Since(t0).Round(time.Millisecond))
	})
	return l.closeErr
}

// Logs returns the last lines of every node's component logs.
func (l *Lab) Logs(lines int) string {
	var b strings.Builder
	for _, n := range l.Nodes {
		for _, f := range []string{"init.log", "containerd.log", "kubelet.log"} {
			fmt.Fprintf(&b, "===== %s %s =====\n%s\n", n.Name, f, tailFile(filepath.Join(n.Dir, "logs", f), lines))
		}
	}
	return b.String()
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// NodeNames are the nodes' names, in order.
func (l *Lab) NodeNames() []string {
	out := make([]string, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// CiliumVersion is the Cilium release whose images the lab's nodes hold
// (Options.CiliumVersion).
func (l *Lab) CiliumVersion() string { return l.opts.CiliumVersion }

// Bin is the path of a tool the lab's build put into the tool cache
// (hack/datapath/build.sh: datapath/bin).
func (l *Lab) Bin(name string) string { return l.bin(name) }
