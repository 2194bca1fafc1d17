// Package datapath holds the real-datapath tests: real nodes (package lab)
// running a real source CNI (Flannel, Calico, Canal), kube-proxy, CoreDNS
// and Cilium, migrated by the built plugin while a monitor measures every
// pod pair, Service and NetworkPolicy.
// They run with `make test-datapath` (E2E_DATAPATH=1, root).
package datapath

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	e2e "github.com/cni-migrate/kubectl-cni-migrate/test/e2e"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

var (
	liveMu sync.Mutex
	live   = map[*lab.Lab]struct{}{}
)

// TestMain closes every lab on SIGINT/SIGTERM before dying of the signal
// (a SIGKILL still takes every process down by Pdeathsig; the namespaces a
// killed run leaves are removed by the next lab's start).
func TestMain(m *testing.M) { os.Exit(e2e.RunWith(m, "tearing the labs down", closeAll)) }

func closeAll() {
	liveMu.Lock()
	labs := make([]*lab.Lab, 0, len(live))
	for l := range live {
		labs = append(labs, l)
	}
	liveMu.Unlock()
	for _, l := range labs {
		if err := l.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "datapath: close lab %s: %v\n", l.Dir, err)
		}
	}
}

// need skips the test unless the lab can run here.
func need(t testing.TB) {
	t.Helper()
	if os.Getenv("E2E_DATAPATH") == "" {
		t.Skip("real-datapath tests run with E2E_DATAPATH=1 (make test-datapath)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("real-datapath tests need root")
	}
}

// startLab starts a lab for the test and registers its teardown; the work
// directory is kept when the test fails (or E2E_KEEP_DIR is set).
func startLab(t testing.TB, ctx context.Context, opts lab.Options) *lab.Lab {
	t.Helper()
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "cni-migrate-lab-")
		if err != nil {
			t.Fatal(err)
		}
		opts.Dir = d
	}
	opts.Logf = func(format string, args ...any) { t.Logf(format, args...) }
	if opts.ProbeBinary == "" {
		opts.ProbeBinary = buildProbe(t, opts.Dir)
	}
	if opts.PluginBinary == "" {
		opts.PluginBinary = e2e.PluginPath(t)
	}
	var created *lab.Lab
	opts.Created = func(l *lab.Lab) {
		liveMu.Lock()
		live[l] = struct{}{}
		liveMu.Unlock()
		created = l
	}
	l, err := lab.Start(ctx, opts)
	if err != nil {
		if created != nil { // Start closed it
			liveMu.Lock()
			delete(live, created)
			liveMu.Unlock()
		}
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if d, err := time.ParseDuration(os.Getenv("E2E_LAB_HOLD_ON_FAIL")); err == nil && t.Failed() {
			// A failed lab kept running to look at by hand.
			release := filepath.Join(l.Dir, "release")
			t.Logf("lab held for %v after the failure: export KUBECONFIG=%s; touch %s to tear it down", d, l.Cluster.Kubeconfig, release)
			for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(2 * time.Second) {
				if _, err := os.Stat(release); err == nil {
					break
				}
			}
		}
		if t.Failed() {
			// The logs go to a file in the kept directory, not the test's
			// output, whose tail (all CI shows) must stay the failures.
			var b strings.Builder
			b.WriteString(l.Logs(200))
			l.Cluster.DumpLogs(&b)
			f := filepath.Join(l.Dir, "failure-logs.txt")
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				t.Logf("lab logs:\n%s", b.String())
			} else {
				t.Logf("lab and control plane logs (last lines of each): %s", f)
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
		liveMu.Lock()
		delete(live, l)
		liveMu.Unlock()
		if t.Failed() || os.Getenv("E2E_KEEP_DIR") != "" {
			t.Logf("lab directory kept: %s", l.Dir)
		} else {
			_ = os.RemoveAll(l.Dir)
		}
	})
	return l
}

// buildProbe builds the monitor's probe program (static) and keeps it in
// the tool cache, replaced only when its bytes change: the lab's image
// archive (and each node's import of it) is keyed on its inputs' paths and
// times, so an unchanged probe reuses them.
func buildProbe(t testing.TB, dir string) string {
	t.Helper()
	tmp := filepath.Join(dir, "labprobe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, "../cmd/labprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build labprobe: %v\n%s", err, b)
	}
	out := filepath.Join(cluster.DefaultCache(), "datapath", "bin", "labprobe")
	built, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if cached, err := os.ReadFile(out); err == nil && bytes.Equal(cached, built) {
		return out
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// installSource installs what a kubeadm cluster running the source runs
// (kubeadm-config, kube-proxy in iptables mode, the CNI, CoreDNS) with the
// lab's images, and waits for every node to be Ready.
func installSource(t testing.TB, ctx context.Context, l *lab.Lab, src lab.Source) {
	t.Helper()
	if err := l.Install(ctx, src); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := l.WaitReady(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("all nodes Ready with %s after %v", src.Name, time.Since(t0).Round(time.Millisecond))
}

// waitMonitorGreen waits until, for quiet, every one of the lab's monitor
// pods has answered every other, reached every Service and resolved the
// peer Service, with no probe failing (and no policy probe of a flow the
// policies allow): the baseline a migration must start from (a headless Service's first seconds, before its EndpointSlice, are
// NXDOMAIN, which CoreDNS then caches).
func waitMonitorGreen(t testing.TB, ctx context.Context, l *lab.Lab, quiet, timeout time.Duration) {
	t.Helper()
	pods := len(l.Nodes)
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		why = monitorGreen(l, pods, quiet)
		if why == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Fatalf("the monitor was not green for %v within %v: %s", quiet, timeout, why)
}

// monitorGreen says why the last quiet of probes is not all green ("" when
// it is).
func monitorGreen(l *lab.Lab, pods int, quiet time.Duration) string {
	probes, err := monitor.Load(l.MonitorDir)
	if err != nil {
		return err.Error()
	}
	from := time.Now().Add(-quiet)
	peers := map[string]map[string]bool{}
	kinds := map[string]map[string]bool{}
	for _, p := range probes {
		if p.T.Before(from) || p.Denied() {
			continue
		}
		if !p.OK {
			return fmt.Sprintf("%s %s -> %s: %s", p.SrcPod, p.Kind, p.Dst, p.Err)
		}
		if !strings.HasPrefix(p.SrcPod, "monitor-") {
			continue // a policy server or client: its allowed flows are OK
		}
		if peers[p.SrcPod] == nil {
			peers[p.SrcPod], kinds[p.SrcPod] = map[string]bool{}, map[string]bool{}
		}
		kinds[p.SrcPod][p.Kind] = true
		if p.Kind == monitor.KindPod {
			peers[p.SrcPod][p.DstPod] = true
		}
	}
	if len(peers) != pods {
		return fmt.Sprintf("%d of %d probe pods are probing", len(peers), pods)
	}
	for src, ps := range peers {
		if len(ps) != pods-1 {
			return fmt.Sprintf("%s reaches %d of %d peers", src, len(ps), pods-1)
		}
		for _, k := range []string{monitor.KindPod, monitor.KindMTU, monitor.KindDNS, monitor.KindLoopback, "svc-ip", "svc-dns", "web"} {
			if !kinds[src][k] {
				return fmt.Sprintf("%s has no %s probe", src, k)
			}
		}
	}
	return ""
}

// TestLabHold starts a lab for E2E_LAB_HOLD=SOURCE (flannel, calico,
// canal) with its workloads, policies and monitor, and Cilium's images,
// prints its KUBECONFIG and keeps it until E2E_LAB_HOLD_FOR (default 1h)
// has passed or the test is interrupted: a lab to look at by hand
// (make lab-hold SOURCE=calico).
func TestLabHold(t *testing.T) {
	src := os.Getenv("E2E_LAB_HOLD")
	if src == "" {
		t.Skip("E2E_LAB_HOLD=SOURCE starts a lab and keeps it (make lab-hold)")
	}
	need(t)
	s, err := lab.SourceNamed(src)
	if err != nil {
		t.Fatal(err)
	}
	hold := time.Hour
	if d, err := time.ParseDuration(os.Getenv("E2E_LAB_HOLD_FOR")); err == nil {
		hold = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), hold+20*time.Minute)
	defer cancel()
	l := startLab(t, ctx, lab.Options{Nodes: s.Nodes, Calico: s.Calico, CiliumVersion: ciliumVersion(t)})
	installSource(t, ctx, l, s)
	if err := l.Workloads(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Monitor(ctx, probeInterval, probeTimeout, s.Policies); err != nil {
		t.Fatal(err)
	}
	// E2E_LAB_HOLD_MIGRATE=NODE[,NODE...]: Cilium installed beside the
	// old CNI as the migration tests do (plan's advice, values, helm
	// install, nodeconfig --apply), and those nodes migrated with `node`:
	// the half-migrated cluster, to look at by hand.
	if names := os.Getenv("E2E_LAB_HOLD_MIGRATE"); names != "" {
		work := filepath.Join(l.Dir, "migration")
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		mark := func(what string) { t.Logf("lab: %s", what) }
		followPlan(t, ctx, l, mark)
		_, advice := ciliumBeside(t, ctx, l, work, mark)
		if strings.Contains(advice, "policy-bridge --deploy") {
			deployBridge(t, ctx, l, s.Policies.Calico)
		}
		mustPlugin(t, ctx, l, "nodeconfig", "--apply")
		mustPlugin(t, ctx, l, append(append([]string{"node"}, strings.Split(names, ",")...),
			"--reboot-command", l.RebootCommand(), "--probe-image", lab.Images.Agnhost,
			"--reboot-timeout", "5m", "--agent-timeout", "5m")...)
		t.Logf("lab: %s on Cilium; values and helm's chart in %s", names, work)
	}
	t.Logf("lab up: export KUBECONFIG=%s (reboot: %s)", l.Cluster.Kubeconfig, l.RebootCommand())
	select {
	case <-ctx.Done():
	case <-time.After(hold):
	}
}
