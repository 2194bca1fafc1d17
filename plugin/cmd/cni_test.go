package cmd

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/snapfix"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestSourceCNIFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		has  string
	}{
		{"unknown --from", []string{"plan", "--from", "antrea"}, `--from "antrea" is not a CNI this version migrates from; use one of flannel, canal, calico, weave, kube-router`},
		{"bad --old-pod-cidr", []string{"values", "--from", "calico", "--old-pod-cidr", "10.50.0.0"}, `--old-pod-cidr "10.50.0.0" is not an IPv4 CIDR`},
		{"--old-pod-cidr with host bits", []string{"plan", "--old-pod-cidr", "10.50.1.0/16"}, "pass the network address, 10.50.0.0/16"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, line, code := run(t, tt.args...)
			if code != errs.Usage || !strings.Contains(line, tt.has) {
				t.Fatalf("exit %d %q, want %d with %q", code, line, errs.Usage, tt.has)
			}
		})
	}
}

// TestSourceCNIValues runs detection on the detect package's fixtures of
// each source CNI and generates the values: the keys that depend on the
// old CNI (Cilium's pool, its tunnel port, kube-proxy replacement) are
// kept in a golden file.
func TestSourceCNIValues(t *testing.T) {
	tests := []struct {
		name     string
		files    []string
		override detect.Override
		tweak    func(*detect.Snapshot)
		opts     proposal.Options
	}{
		{name: "flannel", files: []string{"common-nodes.yaml", "kubeadm.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml"}},
		{name: "canal", files: []string{"common-nodes.yaml", "kubeadm.yaml", "canal.yaml"}},
		{name: "calico manifest, IP-in-IP", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-manifest.yaml"}},
		// The pools take 10.245.0.0/16 and 10.246.0.0/16: Cilium gets the next.
		{name: "calico vxlan, pools on the first candidates", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-vxlan.yaml"}},
		{name: "calico operator", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-operator.yaml"}},
		{name: "calico operator, geneve", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-operator.yaml"}, opts: proposal.Options{TunnelProtocol: "geneve"}},
		{name: "weave", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "weave.yaml"}},
		// No kube-proxy: Cilium replaces kube-router's service proxy.
		{name: "kube-router", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "kube-router.yaml"}, tweak: func(s *detect.Snapshot) {
			var keep = s.DaemonSets[:0]
			for _, ds := range s.DaemonSets {
				if ds.Name != "kube-proxy" {
					keep = append(keep, ds)
				}
			}
			s.DaemonSets = keep
		}},
		// kube-router on FoU with Cilium's default port: the next one up.
		{name: "kube-router fou on 8473", files: []string{"plain-nodes.yaml", "kubeadm.yaml", "kube-router.yaml"}, tweak: func(s *detect.Snapshot) {
			for i := range s.DaemonSets {
				if s.DaemonSets[i].Name == "kube-router" {
					c := &s.DaemonSets[i].Spec.Template.Spec.Containers[0]
					c.Args = append(c.Args, "--overlay-encap=fou", "--overlay-encap-port=8473")
				}
			}
		}},
		{name: "canal and weave, --from weave", files: []string{"common-nodes.yaml", "canal.yaml", "weave.yaml"}, override: detect.Override{From: "weave"}},
		{name: "unrecognised, --from calico --old-pod-cidr 10.245.0.0/16", files: []string{"plain-nodes.yaml"},
			override: detect.Override{From: "calico", OldPodCIDRs: []string{"10.245.0.0/16"}}},
	}
	var golden bytes.Buffer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snapfix.Load(t, tt.files...)
			s.APIServerURL = "https://192.168.10.10:6443"
			if tt.tweak != nil {
				tt.tweak(s)
			}
			c := detect.AnalyzeWith(s, tt.override)
			if c.Problem != nil {
				t.Fatal(c.Problem)
			}
			p, initial, final, _, err := proposal.GenerateValues(c, tt.opts, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range proposal.Reserved(c) {
				if r.Prefix.Overlaps(p.Prefix()) {
					t.Errorf("pod CIDR %s overlaps %s", p.PodCIDR, r.What)
				}
			}
			if proposal.OldCNIUsesPort(c, p.TunnelPort) {
				t.Errorf("tunnel port %d is %s's", p.TunnelPort, c.CNI.Name)
			}
			fmt.Fprintf(&golden, "# %s: %s, network %s, UDP ports %v\n", tt.name, c.CNI.Name, c.CNI.Network, c.CNI.UDPPorts)
			for _, doc := range []struct {
				name string
				m    map[string]any
			}{{"initial", initial.Map()}, {"final", final.Map()}} {
				picked := map[string]any{}
				for _, k := range []string{"ipam", "tunnelProtocol", "tunnelPort", "kubeProxyReplacement", "k8sServiceHost", "k8sServicePort"} {
					if v, ok := doc.m[k]; ok {
						picked[k] = v
					}
				}
				out, err := yaml.Marshal(map[string]any{doc.name: picked})
				if err != nil {
					t.Fatal(err)
				}
				golden.Write(out)
			}
			golden.WriteString("---\n")
		})
	}
	path := filepath.Join("testdata", "source-cni-values.golden.yaml")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(want, golden.Bytes()) {
		t.Errorf("values differ from %s (go test -update rewrites it):\n%s", path, golden.String())
	}
}
