// Command e2e-cluster starts and stops a standalone local cluster (the e2e
// harness with its Flannel fixture) for demos:
//
//	e2e-cluster up --dir DIR [--nodes N] [--cilium VERSION --values FILE]
//	e2e-cluster down --dir DIR
//
// `up` returns once the cluster is ready; its processes (etcd, the control
// plane, kwok and the Cilium simulation) keep running in the background and
// are recorded in DIR/pids. DIR/kubeconfig is an admin kubeconfig. `down`
// stops the recorded processes by PID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  e2e-cluster up --dir DIR [--nodes N] [--cilium VERSION [--values FILE]] [--cache DIR] [--name NAME]
  e2e-cluster down --dir DIR
  e2e-cluster sim --kubeconfig FILE [--label KEY] [--all-agents]   (run by up)
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	case "sim":
		err = sim(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-cluster:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "work directory (required); must not hold a running cluster")
	nodes := fs.Int("nodes", 3, "number of fake nodes (the first is a control-plane node)")
	ciliumVersion := fs.String("cilium", "", "also install this Cilium version (e.g. 1.18.11) with helm")
	values := fs.String("values", "", "Helm values file for --cilium")
	cache := fs.String("cache", cluster.DefaultCache(), "tool cache built by hack/e2e/build-tools.sh")
	name := fs.String("name", "cni-migrate-e2e", "cluster and kubeconfig context name")
	allAgents := fs.Bool("all-agents", false, "simulate CiliumNodes for every node running an agent, not only migrated ones")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	_ = fs.Parse(args)
	if *dir == "" || *nodes < 1 || fs.NArg() > 0 || (*values != "" && *ciliumVersion == "") {
		usage()
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(abs, cluster.PIDFileName)); err == nil {
		return fmt.Errorf("%s already holds a cluster (run `e2e-cluster down --dir %s` first)", abs, *dir)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, *timeout)
	defer cancelTimeout()

	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Cache: *cache, Dir: abs, Name: *name, Detach: true, Logf: logf})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			logf("failed; stopping the cluster (logs in %s/logs)", abs)
			_ = c.Stop()
			_ = os.Remove(filepath.Join(abs, cluster.PIDFileName))
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	simArgs := []string{"sim", "--kubeconfig", c.Kubeconfig}
	if *allAgents {
		simArgs = append(simArgs, "--all-agents")
	}
	if err := c.StartProcess("ciliumsim", self, simArgs...); err != nil {
		return err
	}
	specs := make([]cluster.NodeSpec, *nodes)
	for i := range specs {
		specs[i] = cluster.NodeSpec{Name: fmt.Sprintf("worker-%d", i)}
		if i == 0 {
			specs[i] = cluster.NodeSpec{Name: "control-plane", ControlPlane: true}
		}
	}
	if _, err := c.AddNodes(ctx, specs); err != nil {
		return err
	}
	logf("%d nodes ready", *nodes)
	if err := fixture.FlannelCluster(ctx, c, *name); err != nil {
		return err
	}
	if err := fixture.WaitWorkloadsReady(ctx, c, 5*time.Minute); err != nil {
		return err
	}
	logf("flannel cluster fixture ready")
	if *ciliumVersion != "" {
		if err := fixture.InstallCilium(ctx, c, *ciliumVersion, *values); err != nil {
			return err
		}
		logf("cilium %s installed", *ciliumVersion)
	}
	ok = true
	logf("cluster up in %v; processes recorded in %s", time.Since(t0).Round(time.Millisecond), filepath.Join(abs, cluster.PIDFileName))
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	return nil
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	dir := fs.String("dir", "", "work directory given to up (required)")
	_ = fs.Parse(args)
	if *dir == "" || fs.NArg() > 0 {
		usage()
	}
	pidFile := filepath.Join(*dir, cluster.PIDFileName)
	if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
		logf("no cluster recorded in %s", *dir)
		return nil
	}
	if err := cluster.StopDir(*dir, 10*time.Second); err != nil {
		return err
	}
	logf("stopped the cluster in %s (logs kept in %s)", *dir, filepath.Join(*dir, "logs"))
	return os.Remove(pidFile)
}

// sim runs the Cilium simulation until SIGTERM or SIGINT.
func sim(args []string) error {
	fs := flag.NewFlagSet("sim", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig (required)")
	label := fs.String("label", ciliumsim.DefaultMigrationLabel, "migration node label (value \"true\")")
	allAgents := fs.Bool("all-agents", false, "CiliumNodes for every node running an agent")
	_ = fs.Parse(args)
	if *kubeconfig == "" {
		usage()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	s, err := ciliumsim.Start(ctx, cfg, ciliumsim.Options{MigrationLabel: *label, CiliumNodesForAllAgents: *allAgents, Logf: logf})
	if err != nil {
		return err
	}
	s.Wait()
	return nil
}
