package cmd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/snapfix"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

// TestSourceCNIGuardAndMTU runs detection on the detect package's fixtures
// of each source CNI, then values.Guard on a --values file that takes the
// old CNI's own UDP port and its nodes' podCIDRs, and the plan's mtu check;
// what they say is kept in a golden file.
func TestSourceCNIGuardAndMTU(t *testing.T) {
	tests := []struct {
		name  string
		files []string
	}{
		{"flannel", []string{"common-nodes.yaml", "kubeadm.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml"}},
		{"flannel host-gw", []string{"common-nodes.yaml", "kubeadm.yaml", "flannel-hostgw.yaml"}},
		{"canal", []string{"common-nodes.yaml", "kubeadm.yaml", "canal.yaml"}},
		{"calico manifest, IP-in-IP", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-manifest.yaml"}},
		{"calico vxlan", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-vxlan.yaml"}},
		{"calico operator", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-operator.yaml"}},
		{"weave", []string{"plain-nodes.yaml", "kubeadm.yaml", "weave.yaml"}},
		{"kube-router", []string{"plain-nodes.yaml", "kubeadm.yaml", "kube-router.yaml"}},
	}
	var golden bytes.Buffer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snapfix.Load(t, tt.files...)
			s.APIServerURL = "https://192.168.10.10:6443"
			c := detect.AnalyzeWith(s, detect.Override{})
			if c.Problem != nil {
				t.Fatal(c.Problem)
			}
			fmt.Fprintf(&golden, "# %s: %s %s, MTU %d, UDP ports %v\n", tt.name, c.CNI.Name, c.CNI.Backend.Type, c.CNI.Backend.MTU, c.CNI.UDPPorts)

			user := map[string]any{"ipam": map[string]any{"mode": "kubernetes"}}
			port := c.CNI.Backend.Port
			if port == 0 && len(c.CNI.UDPPorts) > 0 {
				port = c.CNI.UDPPorts[0]
			}
			if port != 0 {
				user["tunnelPort"] = port
			}
			p, initial, _, _, err := proposal.GenerateValues(c, proposal.Options{}, user, "bad.yaml")
			if err != nil {
				t.Fatal(err)
			}
			unsafe := guardValues(c, p, initial, "bad.yaml")
			for _, u := range unsafe {
				fmt.Fprintf(&golden, "unsafe %s: %s; %s\n", u.Key, u.Msg, u.Fix)
			}
			if _, err := values.Refuse(unsafe, false); errs.Code(err) != errs.Unsafe {
				t.Errorf("not refused: %v", err)
			}
			if w, err := values.Refuse(unsafe, true); err != nil || len(w) != len(unsafe) {
				t.Errorf("override: %v, %v", w, err)
			}
			r := check.MTU(c, p, 0)
			fmt.Fprintf(&golden, "mtu %s: %s\n", r.Status, r.Message)
			if r.Fix != "" {
				fmt.Fprintf(&golden, "  -> %s\n", r.Fix)
			}
			golden.WriteString("\n")
		})
	}
	path := filepath.Join("testdata", "source-cni-guard-mtu.golden.txt")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plugin/cmd -run TestSourceCNIGuardAndMTU -update to create it)", err)
	}
	if got := golden.String(); got != string(want) {
		t.Errorf("%s differs (run with -update if intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
