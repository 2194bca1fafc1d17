// Command bench-status measures `kubectl cni-migrate status` on a large
// simulated cluster against `kubectl get pods -A -o json` on the same
// cluster: wall time, API requests and peak RSS of each.
//
// It starts a local control plane (the e2e harness), creates BENCH_NODES
// kwok nodes (default 1000, three of them control-plane nodes), installs
// the Flannel fixture and Cilium with the plugin's own values, marks
// BENCH_MIGRATED workers as migrated (default a tenth), creates BENCH_PODS
// pods (default 30000) spread over the workers with spec.nodeName set (no
// scheduling) and waits until every pod runs. Pods carry the pod-network
// annotation from the start, so kwok starts them at once (no CNI simulation
// round trip): pods on migrated nodes get addresses in Cilium's pool and a
// CiliumEndpoint (from the Cilium simulation), the others an address from
// their node's podCIDR. Then it runs each command BENCH_RUNS times (default
// 3) and prints the figures. The cluster is stopped at the end (by PID).
//
// With BENCH_ROLLOUT=1 it then migrates the cluster twice over, in the same
// run (rollout.go): `kubectl cni-migrate rollout --batch BENCH_BATCH
// --reboot=skip` on every node but BENCH_GUIDE_NODES workers (default 20),
// and on those the guide's own per-node loop of kubectl commands, one node
// after the other; API requests are counted per client by the API server's
// audit log. `make bench-rollout` runs 200 nodes and 6000 pods this way.
//
// Environment: BENCH_NODES, BENCH_PODS, BENCH_MIGRATED, BENCH_RUNS,
// BENCH_WORKERS (pod-creating goroutines, default 8), BENCH_CILIUM (default
// 1.18.11; "none" skips Cilium), BENCH_TIMEOUT (default 90m), BENCH_DIR (work
// directory, default a temporary one), E2E_CACHE, PLUGIN_BIN_DIR (the
// directory of kubectl-cni_migrate, required). The full size takes about
// 20 minutes on 2 cores; `BENCH_NODES=50 BENCH_PODS=1500` a minute or two.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

type config struct {
	nodes, pods, migrated, runs, workers int
	cilium                               string
	timeout                              time.Duration
	dir, pluginDir                       string
	// rollout: after the status figures, migrate the cluster with
	// `rollout --batch batch --reboot=skip` and the guide's loop of kubectl
	// commands on guideNodes of the workers (rollout.go).
	rollout           bool
	batch, guideNodes int
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q is not a non-negative number", name, v)
	}
	return n, nil
}

func readConfig() (config, error) {
	var c config
	var err error
	if c.nodes, err = envInt("BENCH_NODES", 1000); err != nil {
		return c, err
	}
	if c.pods, err = envInt("BENCH_PODS", 30000); err != nil {
		return c, err
	}
	if c.runs, err = envInt("BENCH_RUNS", 3); err != nil {
		return c, err
	}
	if c.workers, err = envInt("BENCH_WORKERS", 8); err != nil {
		return c, err
	}
	if c.nodes < 4 || c.runs < 1 || c.workers < 1 {
		return c, errors.New("need BENCH_NODES >= 4, BENCH_RUNS >= 1 and BENCH_WORKERS >= 1")
	}
	if c.migrated, err = envInt("BENCH_MIGRATED", c.workerCount()/10); err != nil {
		return c, err
	}
	c.migrated = min(c.migrated, c.workerCount())
	c.cilium = os.Getenv("BENCH_CILIUM")
	if c.cilium == "" {
		c.cilium = "1.18.11"
	}
	if c.cilium == "none" {
		c.cilium, c.migrated = "", 0
	}
	c.timeout = 90 * time.Minute
	if v := os.Getenv("BENCH_TIMEOUT"); v != "" {
		if c.timeout, err = time.ParseDuration(v); err != nil {
			return c, fmt.Errorf("BENCH_TIMEOUT: %w", err)
		}
	}
	c.rollout = os.Getenv("BENCH_ROLLOUT") == "1"
	if c.batch, err = envInt("BENCH_BATCH", 20); err != nil {
		return c, err
	}
	if c.guideNodes, err = envInt("BENCH_GUIDE_NODES", 20); err != nil {
		return c, err
	}
	if c.rollout && (c.cilium == "" || c.batch < 1 || c.guideNodes < 1 || c.guideNodes >= c.workerCount()-c.migrated) {
		return c, errors.New("BENCH_ROLLOUT=1 needs Cilium, BENCH_BATCH >= 1 and 1 <= BENCH_GUIDE_NODES < the workers not migrated")
	}
	c.dir = os.Getenv("BENCH_DIR")
	c.pluginDir = os.Getenv("PLUGIN_BIN_DIR")
	if c.pluginDir == "" {
		return c, errors.New("PLUGIN_BIN_DIR must name the directory of kubectl-cni_migrate (make bench-status sets it)")
	}
	if c.pluginDir, err = filepath.Abs(c.pluginDir); err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(c.pluginDir, "kubectl-cni_migrate")); err != nil {
		return c, fmt.Errorf("plugin binary: %w", err)
	}
	return c, nil
}

// controlPlanes is the number of control-plane nodes.
const controlPlanes = 3

func (c config) workerCount() int { return c.nodes - controlPlanes }

func workerName(i int) string { return fmt.Sprintf("worker-%04d", i) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func main() {
	cfg, err := readConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-status:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-status:", err)
		os.Exit(1)
	}
}

// nodeMaskSize gives each node a podCIDR block: a /24 when 10.244.0.0/16
// has one for every node, else the largest block that does, as long as
// it holds the node's pods, its DaemonSet pods and the gateway.
func nodeMaskSize(nodes, podsPerNode int) (int, error) {
	mask := max(24, 16+bits.Len(uint(nodes-1)))
	if 1<<(32-mask) < podsPerNode+8 {
		return 0, fmt.Errorf("%d nodes with %d pods each do not fit in 10.244.0.0/16", nodes, podsPerNode)
	}
	return mask, nil
}

func run(ctx context.Context, cfg config) error {
	start := time.Now()
	perNode := (cfg.pods + cfg.workerCount() - 1) / cfg.workerCount()
	mask, err := nodeMaskSize(cfg.nodes, perNode)
	if err != nil {
		return err
	}
	dir := cfg.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-status-"); err != nil {
			return err
		}
	}
	logf("starting a control plane in %s (node podCIDRs /%d)", dir, mask)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	auditArgs, err := auditFlags(dir)
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{
		Dir: dir, Name: "bench-status", NodeCIDRMaskSize: mask, ExtraAPIServerArgs: auditArgs,
		Logf: func(format string, args ...any) { logf("cluster: "+format, args...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping the cluster (PIDs %v)", c.PIDs())
		if err := c.Stop(); err != nil {
			logf("stop: %v", err)
		}
	}()
	simCtx, stopSim := context.WithCancel(ctx)
	sim, err := ciliumsim.Start(simCtx, c.RESTConfig, ciliumsim.Options{})
	if err != nil {
		stopSim()
		return fmt.Errorf("cilium simulation: %w", err)
	}
	defer func() { stopSim(); sim.Wait() }()

	fast := rest.CopyConfig(c.RESTConfig)
	fast.QPS, fast.Burst = 2000, 4000
	fast.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	fast.ContentType = "application/vnd.kubernetes.protobuf"
	kc, err := kubernetes.NewForConfig(fast)
	if err != nil {
		return err
	}

	// Nodes, in chunks so each wait for Ready is short.
	t := time.Now()
	var specs []cluster.NodeSpec
	for i := range controlPlanes {
		specs = append(specs, cluster.NodeSpec{Name: fmt.Sprintf("control-plane-%d", i), ControlPlane: true})
	}
	for i := range cfg.workerCount() {
		specs = append(specs, cluster.NodeSpec{Name: workerName(i)})
	}
	for i := 0; i < len(specs); i += 100 {
		if _, err := c.AddNodes(ctx, specs[i:min(i+100, len(specs))]); err != nil {
			return err
		}
	}
	logf("%d nodes Ready in %v", len(specs), time.Since(t).Round(time.Second))

	t = time.Now()
	if err := fixture.FlannelCluster(ctx, c, "bench-status"); err != nil {
		return err
	}
	if cfg.cilium != "" {
		valuesDir := filepath.Join(dir, "values")
		if err := os.MkdirAll(valuesDir, 0o755); err != nil {
			return err
		}
		// Cilium's pool (10.245.0.0/16) is split like the node podCIDRs.
		if out, err := plugin(ctx, c, cfg, "values", "--cilium-version", cfg.cilium, "--output-dir", valuesDir,
			"--cluster-pool-mask-size", strconv.Itoa(mask)); err != nil {
			return fmt.Errorf("values: %w\n%s", err, out)
		}
		if err := fixture.CiliumCRDs(ctx, c, cfg.cilium); err != nil {
			return err
		}
		if out, err := fixture.Helm(ctx, c, "install", "cilium", fixture.CiliumChart(c, cfg.cilium), "--namespace", "kube-system",
			"--values", filepath.Join(valuesDir, "values-initial.yaml"), "--wait", "--timeout", "30m"); err != nil {
			return fmt.Errorf("helm install: %w\n%s", err, out)
		}
		if out, err := plugin(ctx, c, cfg, "nodeconfig", "--apply"); err != nil {
			return fmt.Errorf("nodeconfig: %w\n%s", err, out)
		}
	}
	if err := fixture.WaitWorkloadsReady(ctx, c, 30*time.Minute); err != nil {
		return err
	}
	logf("flannel fixture%s ready in %v", map[bool]string{true: " and Cilium " + cfg.cilium}[cfg.cilium != ""], time.Since(t).Round(time.Second))

	// The first workers are migrated: phase done, the migration label.
	for i := range cfg.migrated {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"},"annotations":{"cni-migrate.io/phase":"done","cni-migrate.io/phase-time":%q}}}`,
			ciliumsim.DefaultMigrationLabel, time.Now().UTC().Format(time.RFC3339))
		if _, err := kc.CoreV1().Nodes().Patch(ctx, workerName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
	}

	t = time.Now()
	ciliumPods, err := createPods(ctx, kc, cfg, mask)
	if err != nil {
		return err
	}
	logf("%d pods created in %v", cfg.pods, time.Since(t).Round(time.Second))
	md, err := metadata.NewForConfig(fast)
	if err != nil {
		return err
	}
	if err := waitRunning(ctx, md, ciliumPods); err != nil {
		return err
	}
	logf("every pod Running, %d CiliumEndpoints, %v after the start", ciliumPods, time.Since(start).Round(time.Second))

	total, err := countObjects(ctx, md, corev1.SchemeGroupVersion.WithResource("pods"), "")
	if err != nil {
		return err
	}
	if err := measure(ctx, c, cfg, total, ciliumPods); err != nil {
		return err
	}
	if cfg.rollout {
		return measureRollout(ctx, c, cfg, dir)
	}
	return nil
}

// plugin runs `kubectl cni-migrate ARGS` against the cluster.
func plugin(ctx context.Context, c *cluster.Cluster, cfg config, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"cni-migrate"}, args...)...)
	cmd.Env = commandEnv(c, cfg)
	return cmd.CombinedOutput()
}

func commandEnv(c *cluster.Cluster, cfg config) []string {
	return append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "NO_COLOR=1",
		"PATH="+cfg.pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// createPods spreads cfg.pods pods over the workers (spec.nodeName set) in
// ten namespaces, from cfg.workers goroutines. Pods on migrated workers
// get an address in Cilium's pool (a /mask block per node), the others
// one from their node's podCIDR. It returns the number of pods on
// Cilium's pool.
func createPods(ctx context.Context, kc kubernetes.Interface, cfg config, mask int) (int, error) {
	const namespaces = 10
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%02d", i)}}
		if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return 0, err
		}
	}
	pool := netip.MustParsePrefix("10.245.0.0/16")
	ciliumIP := func(node, slot int) string {
		a := pool.Addr().As4()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(node)<<(32-mask) + uint32(slot) + 2
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	}
	workers := cfg.workerCount()
	var next, created, ciliumPods atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		t0 := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n := created.Load()
				logf("  %d/%d pods created (%.0f/s)", n, cfg.pods, float64(n)/time.Since(t0).Seconds())
			}
		}
	}()
	for range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.pods {
					return
				}
				node, slot := i%workers, i/workers
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{
						Namespace: fmt.Sprintf("bench-%02d", i%namespaces), Name: fmt.Sprintf("bench-%06d", i),
						Labels:      map[string]string{"app": fmt.Sprintf("bench-%d", i%50), "tier": "bench"},
						Annotations: map[string]string{cluster.PodNetworkAnnotation: ciliumsim.DefaultNetwork},
					},
					Spec: corev1.PodSpec{
						NodeName:   workerName(node),
						Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
					},
				}
				if node < cfg.migrated {
					p.Annotations[cluster.PodNetworkAnnotation] = ciliumsim.NetworkCilium
					p.Annotations[cluster.PodIPsAnnotation] = ciliumIP(node, slot)
				}
				for attempt := 0; ; attempt++ {
					_, err := kc.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if ctx.Err() != nil || attempt == 5 {
						errc <- fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
						cancel()
						return
					}
					time.Sleep(time.Second << attempt)
				}
				created.Add(1)
				if node < cfg.migrated {
					ciliumPods.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return int(ciliumPods.Load()), nil
}

// waitRunning waits until no pod is Pending and the simulation has made
// every CiliumEndpoint, listing metadata only every 15 seconds.
func waitRunning(ctx context.Context, md metadata.Interface, endpoints int) error {
	t0 := time.Now()
	for {
		pending, err := countObjects(ctx, md, corev1.SchemeGroupVersion.WithResource("pods"), "status.phase=Pending")
		if err != nil {
			return err
		}
		eps := 0
		if endpoints > 0 {
			if eps, err = countObjects(ctx, md, ciliumsim.CiliumEndpoints, ""); err != nil {
				return err
			}
		}
		logf("  %d pods Pending, %d/%d CiliumEndpoints (%v)", pending, eps, endpoints, time.Since(t0).Round(time.Second))
		if pending == 0 && eps >= endpoints {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(15 * time.Second):
		}
	}
}

// countObjects counts objects with paginated metadata-only lists.
func countObjects(ctx context.Context, md metadata.Interface, gvr schema.GroupVersionResource, fieldSelector string) (int, error) {
	n := 0
	opts := metav1.ListOptions{Limit: 500, FieldSelector: fieldSelector}
	for {
		l, err := md.Resource(gvr).Namespace("").List(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		n += len(l.Items)
		if opts.Continue = l.Continue; opts.Continue == "" {
			return n, nil
		}
	}
}

// result is one run of a command.
type result struct {
	wall     time.Duration
	requests int
	rssKiB   int64
	stdout   int64
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// runOnce runs a command with stdout counted and discarded, and returns
// its wall time, peak RSS and the number of API requests it logged, and
// its stderr.
//
// The peak RSS comes from GNU time (timeBin) when there is one: os/exec
// starts children with vfork, and Linux then carries the parent's own
// high-water mark (this benchmark, with the Cilium simulation's caches)
// into the child's ru_maxrss. time(1) is small and forks normally.
func runOnce(ctx context.Context, env []string, timeBin string, args []string, requests func(stderr string) int) (result, string, error) {
	return runKeeping(ctx, env, timeBin, args, requests, nil)
}

// runKeeping is runOnce that also copies stdout to keep (when not nil).
func runKeeping(ctx context.Context, env []string, timeBin string, args []string, requests func(stderr string) int, keep io.Writer) (result, string, error) {
	var rssFile string
	full := args
	if timeBin != "" {
		f, err := os.CreateTemp("", "bench-status-rss-")
		if err != nil {
			return result{}, "", err
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		full = append([]string{timeBin, "-f", "%M", "-o", rssFile}, args...)
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = env
	var out countWriter
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if keep != nil {
		cmd.Stdout = io.MultiWriter(&out, keep)
	}
	t := time.Now()
	err := cmd.Run()
	r := result{wall: time.Since(t), stdout: out.n}
	if err != nil {
		return r, "", fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(errOut.String(), 20))
	}
	if rssFile != "" {
		data, err := os.ReadFile(rssFile)
		if err != nil {
			return r, "", err
		}
		if r.rssKiB, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err != nil {
			return r, "", fmt.Errorf("time -f %%M wrote %q: %w", data, err)
		}
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssKiB = ru.Maxrss
	}
	r.requests = requests(errOut.String())
	return r, errOut.String(), nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func measure(ctx context.Context, c *cluster.Cluster, cfg config, totalPods, endpoints int) error {
	env := commandEnv(c, cfg)
	cacheDir := filepath.Join(c.Dir, "kubectl-cache")
	// Warm kubectl's discovery cache so that its runs measure the list.
	warm := exec.CommandContext(ctx, "kubectl", "get", "namespaces", "--cache-dir", cacheDir)
	warm.Env = env
	if out, err := warm.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl get namespaces: %w\n%s", err, out)
	}
	// kubectl -v=6 logs one line per response, in the klog text format
	// (GET https://... 200 OK in 12 milliseconds) or the structured one
	// ("Response" verb="GET" url="https://..." status="200 OK").
	kubectlRequests := regexp.MustCompile(`(?m)(\] (GET|POST|PUT|PATCH|DELETE) https?://\S+ \d{3}|"Response" verb=")`)
	commands := []struct {
		name     string
		args     []string
		requests func(string) int
	}{
		{"kubectl cni-migrate status", []string{"kubectl", "cni-migrate", "status", "-v"}, pluginCount},
		{"kubectl cni-migrate status -o json", []string{"kubectl", "cni-migrate", "status", "-o", "json", "-v"}, pluginCount},
		// The plugin binary alone: kubectl (here a version dispatcher) adds
		// its own process, and its memory, in front of the plugin.
		{"kubectl-cni_migrate status (no kubectl)", []string{filepath.Join(cfg.pluginDir, "kubectl-cni_migrate"), "status", "-v"}, pluginCount},
		{"kubectl get pods -A -o json", []string{"kubectl", "get", "pods", "-A", "-o", "json", "-v=6", "--cache-dir", cacheDir},
			func(s string) int { return len(kubectlRequests.FindAllString(s, -1)) }},
		// The raw list, as the API server sends it: one GET, no decoding.
		{"kubectl get --raw /api/v1/pods", []string{"kubectl", "get", "--raw", "/api/v1/pods", "-v=6", "--cache-dir", cacheDir},
			func(s string) int { return len(kubectlRequests.FindAllString(s, -1)) }},
	}
	timeBin, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		timeBin = ""
		logf("no /usr/bin/time: the peak RSS figures include the benchmark's own (see runOnce)")
	}
	results := make([][]result, len(commands))
	var statusStderr string
	for run := range cfg.runs {
		for i, cmd := range commands {
			r, stderr, err := runOnce(ctx, env, timeBin, cmd.args, cmd.requests)
			if err != nil {
				return err
			}
			if i == 0 {
				statusStderr = stderr
			}
			logf("run %d: %s: %v, %d requests, peak RSS %s, stdout %s", run+1, cmd.name, r.wall.Round(time.Millisecond), r.requests, size(r.rssKiB<<10), size(r.stdout))
			results[i] = append(results[i], r)
		}
	}
	fmt.Printf("\nkubectl cni-migrate status -v, stderr of the last run:\n%s\n", statusStderr)

	fmt.Printf("\nbench-status: %d nodes (%d control-plane), %d pods in the cluster (%d created by the benchmark, the rest DaemonSet and system pods), Cilium %s, %d workers migrated with %d pods on Cilium's pool and their CiliumEndpoints; median of %d runs\n\n",
		cfg.nodes, controlPlanes, totalPods, cfg.pods, orNone(cfg.cilium), cfg.migrated, endpoints, cfg.runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "COMMAND\tWALL TIME\tAPI REQUESTS\tPEAK RSS\tSTDOUT\tRUNS (wall)")
	for i, cmd := range commands {
		rs := results[i]
		med := median(rs)
		var walls []string
		for _, r := range rs {
			walls = append(walls, r.wall.Round(10*time.Millisecond).String())
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%s\t%s\n", cmd.name, med.wall.Round(10*time.Millisecond), med.requests, size(med.rssKiB<<10), size(med.stdout), strings.Join(walls, " "))
	}
	return tw.Flush()
}

func pluginCount(stderr string) int {
	m := regexp.MustCompile(`API requests: (\d+) `).FindStringSubmatch(stderr)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// median takes the median of each figure on its own.
func median(rs []result) result {
	pick := func(get func(result) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return result{
		wall:     time.Duration(pick(func(r result) int64 { return int64(r.wall) })),
		requests: int(pick(func(r result) int64 { return int64(r.requests) })),
		rssKiB:   pick(func(r result) int64 { return r.rssKiB }),
		stdout:   pick(func(r result) int64 { return r.stdout }),
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
