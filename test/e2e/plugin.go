package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// PluginBinary is the file name of the plugin in PLUGIN_BIN_DIR.
const PluginBinary = "kubectl-cni_migrate"

// PluginPath returns $PLUGIN_BIN_DIR/kubectl-cni_migrate, skipping the test
// when PLUGIN_BIN_DIR is unset and failing it when the binary is missing.
func PluginPath(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PLUGIN_BIN_DIR")
	if dir == "" {
		t.Skip("PLUGIN_BIN_DIR is not set (run through `make test-e2e`)")
	}
	p, err := filepath.Abs(filepath.Join(dir, PluginBinary))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("plugin binary: %v", err)
	}
	return p
}

// RunPlugin runs the plugin binary directly against the cluster (KUBECONFIG
// set) and returns its combined output.
func (c *Cluster) RunPlugin(ctx context.Context, t testing.TB, args ...string) ([]byte, error) {
	return cluster.RunCommand(ctx, c.Command(PluginPath(t), args...))
}

// KubectlCNIMigrate runs `kubectl cni-migrate ARGS` with PLUGIN_BIN_DIR first
// in PATH, the way users invoke the plugin.
func (c *Cluster) KubectlCNIMigrate(ctx context.Context, t testing.TB, args ...string) ([]byte, error) {
	dir := filepath.Dir(PluginPath(t))
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	cmd := c.Command(kubectl, append([]string{"cni-migrate"}, args...)...)
	cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cluster.RunCommand(ctx, cmd)
}
