// Package datapath holds the real-datapath tests: real nodes (package lab)
// running real Flannel, kube-proxy, CoreDNS and Cilium, migrated by the
// built plugin while a monitor measures every pod pair and Service.
// They run with `make test-datapath` (E2E_DATAPATH=1, root).
package datapath

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	e2e "github.com/cni-migrate/kubectl-cni-migrate/test/e2e"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
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
func need(t *testing.T) {
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
func startLab(t *testing.T, ctx context.Context, opts lab.Options) *lab.Lab {
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
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	liveMu.Lock()
	live[l] = struct{}{}
	liveMu.Unlock()
	t.Cleanup(func() {
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
func buildProbe(t *testing.T, dir string) string {
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

// flannelCluster installs what a kubeadm cluster with Flannel runs:
// kubeadm-config, kube-proxy (iptables), the upstream kube-flannel.yml and
// CoreDNS, with the lab's images, and waits for every node to be Ready.
func flannelCluster(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	c := l.Cluster
	steps := []struct {
		name string
		fn   func(context.Context, *cluster.Cluster) error
	}{
		{"kubeadm-config", func(ctx context.Context, c *cluster.Cluster) error {
			return fixture.KubeadmConfig(ctx, c, "cni-migrate-lab")
		}},
		{"kube-proxy", fixture.KubeProxyConntrackAsIs},
		{"flannel", fixture.Flannel},
		{"coredns", fixture.CoreDNS},
	}
	for _, s := range steps {
		if err := s.fn(ctx, c); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	t0 := time.Now()
	if err := l.WaitReady(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("all nodes Ready with Flannel after %v", time.Since(t0).Round(time.Millisecond))
}

// waitMonitorGreen waits until, for quiet, every one of the lab's probe
// pods has answered every other, reached every Service and resolved the
// peer Service, with no probe failing: the baseline a migration must start
// from (a headless Service's first seconds, before its EndpointSlice, are
// NXDOMAIN, which CoreDNS then caches).
func waitMonitorGreen(t *testing.T, ctx context.Context, l *lab.Lab, quiet, timeout time.Duration) {
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
		if p.T.Before(from) {
			continue
		}
		if !p.OK {
			return fmt.Sprintf("%s %s -> %s: %s", p.SrcPod, p.Kind, p.Dst, p.Err)
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

// TestLabFlannel is the lab's baseline: real Flannel, kube-proxy and
// CoreDNS on three real nodes, and the monitor's every probe (each pod
// pair, the Services, DNS) answered for 20 seconds.
func TestLabFlannel(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l := startLab(t, ctx, lab.Options{})
	flannelCluster(t, ctx, l)
	if err := l.Workloads(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Monitor(ctx, probeInterval, probeTimeout); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, l.Cluster, 5*time.Minute, lab.AppsNamespace, lab.MonitorNamespace, "kube-system", "kube-flannel"); err != nil {
		t.Fatal(err)
	}
	waitMonitorGreen(t, ctx, l, 5*time.Second, 2*time.Minute)
	start := time.Now()
	time.Sleep(20 * time.Second)
	end := time.Now()
	probes, err := monitor.Load(l.MonitorDir)
	if err != nil {
		t.Fatal(err)
	}
	var kept []monitor.Probe
	for _, p := range probes {
		if !p.T.Before(start) && p.T.Before(end) {
			kept = append(kept, p)
		}
	}
	nets := monitor.Networks{Old: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	rep := monitor.Analyze(kept, nets, []monitor.Phase{{Name: "flannel", Start: start, End: end}}, nil)
	t.Logf("baseline:\n%s", rep.Markdown())
	// Each of the 3 probes checks 2 peers (pod, mtu), 3 targets, DNS and
	// itself.
	if want := 3 * (2*2 + 3 + 1 + 1) * 30; len(kept) < want {
		t.Errorf("%d probes in 20s, want at least %d", len(kept), want)
	}
	for _, p := range rep.Unexplained() {
		t.Errorf("failed on Flannel alone: %s %s (%s) %s %s: %s", p.T.Format("15:04:05.000"), p.SrcPod, p.SrcNode, p.Kind, p.Dst, p.Err)
	}
}
