// Package e2e holds the end-to-end tests of kubectl cni-migrate and the
// helpers they share: NewCluster starts a local control plane (package
// cluster) with kwok fake nodes and the Cilium simulation (package
// ciliumsim), and Main runs the tests so that an interrupt stops every
// cluster.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// Options configure NewCluster.
type Options struct {
	cluster.Options
	// Nodes are created (and waited for) once the control plane runs.
	Nodes []cluster.NodeSpec
	// NoSim leaves the Cilium simulation off. Pods off the host network
	// then never start unless Options.UngatedPodNetwork is set.
	NoSim bool
	// Sim configures the Cilium simulation (logs go to t.Logf by default).
	Sim ciliumsim.Options
	// StartTimeout bounds Start plus node creation (default 3m).
	StartTimeout time.Duration
}

// Cluster is a running test cluster.
type Cluster struct {
	*cluster.Cluster
	// Sim is the running Cilium simulation (nil with NoSim).
	Sim *ciliumsim.Sim
}

var (
	liveMu sync.Mutex
	live   = map[*cluster.Cluster]struct{}{}
)

// NewCluster starts a cluster for a test and registers its cleanup: the sim
// is stopped, component logs are dumped to the test log when the test
// failed, and every process is stopped. The work directory is kept when the
// test failed (its path is logged) and removed otherwise, unless
// E2E_KEEP_DIR is set. With the -short flag the test is skipped.
func NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e cluster tests do not run with -short")
	}
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { t.Logf("cluster: "+format, args...) }
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(os.TempDir(), "cni-migrate-e2e", sanitize(t.Name())+"-"+time.Now().Format("150405.000"))
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	start := time.Now()
	c, err := cluster.Start(ctx, opts.Options)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	liveMu.Lock()
	live[c] = struct{}{}
	liveMu.Unlock()
	simCtx, stopSim := context.WithCancel(context.Background())
	env := &Cluster{Cluster: c}
	t.Cleanup(func() {
		stopSim()
		if env.Sim != nil {
			env.Sim.Wait()
		}
		if t.Failed() {
			var b strings.Builder
			c.DumpLogs(&b)
			t.Logf("component logs (work dir %s):\n%s", c.Dir, b.String())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		liveMu.Lock()
		delete(live, c)
		liveMu.Unlock()
		if !t.Failed() && os.Getenv("E2E_KEEP_DIR") == "" {
			_ = os.RemoveAll(c.Dir)
		} else {
			t.Logf("cluster work dir kept: %s", c.Dir)
		}
	})
	t.Logf("cluster started in %v: KUBECONFIG=%s", time.Since(start).Round(time.Millisecond), c.Kubeconfig)

	if !opts.NoSim {
		simOpts := opts.Sim
		if simOpts.Logf == nil {
			simOpts.Logf = t.Logf
		}
		if env.Sim, err = ciliumsim.Start(simCtx, c.RESTConfig, simOpts); err != nil {
			t.Fatalf("start cilium simulation: %v", err)
		}
	}
	if len(opts.Nodes) > 0 {
		if _, err := c.AddNodes(ctx, opts.Nodes); err != nil {
			t.Fatalf("add nodes: %v", err)
		}
		t.Logf("%d nodes ready after %v", len(opts.Nodes), time.Since(start).Round(time.Millisecond))
	}
	return env
}

// Nodes returns n node specs named control-plane, worker-1, ... worker-(n-1);
// the first is a control-plane node.
func Nodes(n int) []cluster.NodeSpec {
	specs := make([]cluster.NodeSpec, n)
	for i := range specs {
		if i == 0 {
			specs[i] = cluster.NodeSpec{Name: "control-plane", ControlPlane: true}
		} else {
			specs[i] = cluster.NodeSpec{Name: fmt.Sprintf("worker-%d", i)}
		}
	}
	return specs
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Run runs the tests and returns their exit code; call it from TestMain as
// os.Exit(e2e.Run(m)). On SIGINT or SIGTERM it stops every live cluster and
// then dies of the signal. A test binary killed outright (SIGKILL, -timeout
// panic) still takes its clusters down: their processes get SIGKILL from the
// kernel when it dies.
func Run(m *testing.M) int { return RunWith(m, "stopping clusters", StopAll) }

// RunWith is Run with another teardown: stop runs on SIGINT or SIGTERM
// (before the binary dies of the signal, what names it on stderr) and once
// the tests end.
func RunWith(m *testing.M, what string, stop func()) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "e2e: %v: %s\n", sig, what)
		stop()
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
	defer func() {
		signal.Stop(sigs)
		stop()
	}()
	return m.Run()
}

// StopAll stops every cluster started by NewCluster that is still running.
func StopAll() {
	liveMu.Lock()
	cs := make([]*cluster.Cluster, 0, len(live))
	for c := range live {
		cs = append(cs, c)
	}
	liveMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stop cluster %s: %v\n", c.Dir, err)
			}
		}()
	}
	wg.Wait()
}
