package detect

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// loadSnapshot builds a Snapshot from YAML fixture files, as Fetch would
// from the API.
func loadSnapshot(t *testing.T, files ...string) *Snapshot {
	t.Helper()
	s := &Snapshot{ServerVersion: "v1.34.4", ConfigMaps: map[string]*corev1.ConfigMap{}, KubeconfigCluster: "kind-dev", APIServerURL: "https://192.168.10.10:6443"}
	dec := scheme.Codecs.UniversalDeserializer()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, _, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			addToSnapshot(t, s, obj)
		}
	}
	return s
}

func addToSnapshot(t *testing.T, s *Snapshot, obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Node:
		s.Nodes = append(s.Nodes, *o)
	case *appsv1.DaemonSet:
		s.DaemonSets = append(s.DaemonSets, *o)
	case *corev1.ConfigMap:
		s.ConfigMaps[cmKey(o.Namespace, o.Name)] = o
	case *corev1.Pod:
		s.SystemPods = append(s.SystemPods, *o)
	case *networkingv1.NetworkPolicy:
		s.NetworkPolicies = append(s.NetworkPolicies, NamespacedName{o.Namespace, o.Name})
	case *policyv1.PodDisruptionBudget:
		s.PDBs = append(s.PDBs, *o)
	case *networkingv1.ServiceCIDR:
		s.ServiceCIDRs = append(s.ServiceCIDRs, o.Spec.CIDRs...)
	case *corev1.Service:
		s.KubernetesServiceIP = o.Spec.ClusterIP
	default:
		t.Fatalf("fixture kind %T not handled", obj)
	}
}

// result is what the golden files hold: the Cluster and its Problem.
type result struct {
	Cluster *Cluster `json:"cluster"`
	Problem string   `json:"problem,omitempty"`
	Code    int      `json:"code"`
}

func TestAnalyzeGolden(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		// tweak adjusts the snapshot for cases no fixture file covers.
		tweak func(*Snapshot)
		check func(t *testing.T, c *Cluster)
	}{
		{
			name:  "flannel-kubeadm",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml", "workloads.yaml"},
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}
				if c.CNI == nil || c.CNI.Network != "10.244.0.0/16" || c.CNI.Backend != want || c.CNI.Version != "v0.28.4" {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if c.Name != "prod-eu1" || c.ServiceCIDRs[0].Source != "ServiceCIDR objects" {
					t.Errorf("name %q, service %+v", c.Name, c.ServiceCIDRs)
				}
				if c.KubeProxy.Mode != "iptables" || c.KubeProxy.ClusterCIDR != "10.244.0.0/16" || c.KubeProxy.Kind != "DaemonSet" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
				if len(c.BlockingPDBs) != 1 || c.BlockingPDBs[0].Name != "db" {
					t.Errorf("blocking PDBs %+v", c.BlockingPDBs)
				}
				if cp := c.ControlPlaneNodes(); len(cp) != 1 || cp[0] != "cp-1" {
					t.Errorf("control plane %v", cp)
				}
			},
		},
		{
			name:  "flannel-no-servicecidr-objects",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.ServiceCIDRs[0].Source != "kube-apiserver --service-cluster-ip-range" {
					t.Errorf("service %+v", c.ServiceCIDRs)
				}
			},
		},
		{
			name:  "flannel-legacy-kube-system",
			files: []string{"common-nodes.yaml", "flannel-legacy.yaml"},
			tweak: func(s *Snapshot) { s.KubernetesServiceIP = "10.32.0.1" },
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 4790, VNI: 4096}
				if c.CNI == nil || c.CNI.Namespace != "kube-system" || c.CNI.Network != "172.30.0.0/16" || c.CNI.Backend != want {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if !c.ServiceCIDRs[0].Guessed || c.ServiceCIDRs[0].CIDR != "10.32.0.0/12" {
					t.Errorf("service %+v", c.ServiceCIDRs)
				}
				if c.KubeProxy.Kind != "static pods" || c.KubeProxy.Mode != "ipvs" || c.KubeProxy.ClusterCIDR != "172.30.0.0/16" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
				if c.Name != "kind-dev" || c.NameSource != "kubeconfig cluster name" {
					t.Errorf("name %q from %q", c.Name, c.NameSource)
				}
			},
		},
		{
			name:  "flannel-host-gw-no-kube-proxy",
			files: []string{"common-nodes.yaml", "flannel-hostgw.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.CNI == nil || c.CNI.Backend.Type != "host-gw" || c.CNI.Backend.Port != 0 || c.CNI.ConfigMap != "custom-flannel" {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if c.KubeProxy.Present || len(c.ServiceCIDRs) != 0 {
					t.Errorf("kube-proxy %+v services %+v", c.KubeProxy, c.ServiceCIDRs)
				}
			},
		},
		{
			name:  "flannel-with-cilium-in-migration-mode",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml", "cilium-migration.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if !c.Cilium.Installed || !c.Cilium.MigrationMode || c.Cilium.Version != "1.18.11" || c.Cilium.TunnelPort != 8473 {
					t.Errorf("cilium %+v", c.Cilium)
				}
			},
		},
		{name: "cilium-owns-network", files: []string{"common-nodes.yaml", "cilium-owner.yaml"}},
		{name: "calico", files: []string{"common-nodes.yaml", "calico.yaml"}},
		{name: "flannel-and-calico", files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "calico.yaml"}},
		{name: "nothing", files: []string{"common-nodes.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadSnapshot(t, tt.files...)
			if tt.tweak != nil {
				tt.tweak(s)
			}
			c := Analyze(s)
			if tt.check != nil {
				tt.check(t, c)
			}
			r := result{Cluster: c, Code: errs.Code(c.Problem)}
			if c.Problem != nil {
				r.Problem = c.Problem.Error()
				if strings.Contains(r.Problem, "\n") {
					t.Errorf("problem is not one line: %q", r.Problem)
				}
			}
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Errorf("result differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

func TestParseFlannelNetConf(t *testing.T) {
	tests := []struct {
		name, in, network string
		want              Backend
		err               bool
	}{
		{"vxlan defaults", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`, "10.244.0.0/16", Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}, false},
		{"vxlan custom", `{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","Port":8475,"VNI":7}}`, "10.1.0.0/16", Backend{Type: "vxlan", Port: 8475, VNI: 7}, false},
		{"lower-case keys", `{"network":"10.1.0.0/16","backend":{"type":"VXLAN"}}`, "10.1.0.0/16", Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}, false},
		{"host-gw", `{"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}}`, "10.1.0.0/16", Backend{Type: "host-gw"}, false},
		{"wireguard", `{"Network":"10.1.0.0/16","Backend":{"Type":"wireguard"}}`, "10.1.0.0/16", Backend{Type: "wireguard", Port: 51820, PortDefaulted: true}, false},
		{"no backend is udp", `{"Network":"10.1.0.0/16"}`, "10.1.0.0/16", Backend{Type: "udp", Port: 8285, PortDefaulted: true}, false},
		{"broken", `{"Network":`, "", Backend{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, b, err := ParseFlannelNetConf(tt.in)
			if (err != nil) != tt.err || n != tt.network || b != tt.want {
				t.Fatalf("got %q %+v %v", n, b, err)
			}
		})
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"quay.io/cilium/cilium:v1.18.11@sha256:abc": "v1.18.11",
		"ghcr.io/flannel-io/flannel:v0.28.4":        "v0.28.4",
		"localhost:5000/flannel":                    "",
		"flannel":                                   "",
	} {
		if got := imageTag(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
