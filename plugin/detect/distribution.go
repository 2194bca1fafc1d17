package detect

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Distributions the plugin recognises from the nodes.
const (
	DistroK3s  = "k3s"
	DistroRKE2 = "rke2"
)

// The k3s and RKE2 node annotations holding each node's command line
// (config.yaml values included since k3s 1.21, k3s-io/k3s#3290) and the
// k3s defaults the plugin assumes when a flag is not on it (docs.k3s.io:
// --cluster-cidr 10.42.0.0/16, --service-cidr 10.43.0.0/16,
// --flannel-backend vxlan).
const (
	annK3sNodeArgs  = "k3s.io/node-args"
	annRKE2NodeArgs = "rke2.io/node-args"

	K3sDefaultClusterCIDR = "10.42.0.0/16"
	K3sDefaultServiceCIDR = "10.43.0.0/16"

	// K3sCNIConfDir is where k3s's containerd reads CNI configurations
	// (its config.toml conf_dir), K3sCNIBinDir where it finds CNI binaries
	// since k3s's static CNI bin dir (k3s-io/k3s#10868; before it,
	// /var/lib/rancher/k3s/data/current/bin). A custom --data-dir moves both.
	K3sCNIConfDir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
	K3sCNIBinDir  = "/var/lib/rancher/k3s/data/cni"
	// K3sLegacyCNIBinDir is the CNI bin dir of k3s releases before the
	// static one.
	K3sLegacyCNIBinDir = "/var/lib/rancher/k3s/data/current/bin"

	// KubeProxyEmbeddedK3s is KubeProxy.Kind for the kube-proxy k3s runs
	// in its own process (unless --disable-kube-proxy), in kube-proxy's
	// default iptables mode unless a kube-proxy-arg sets another.
	KubeProxyEmbeddedK3s = "embedded in k3s"
)

// Distribution is the Kubernetes distribution the nodes run, when the
// plugin recognises one (k3s, RKE2) from their kubelet version and
// annotations. Its JSON form is part of `plan -o json`.
type Distribution struct {
	// Name is DistroK3s or DistroRKE2.
	Name string `json:"name"`
	// Version is the kubelet version of the first node, e.g. v1.31.4+k3s1.
	Version string `json:"version,omitempty"`
	// Evidence says what told it.
	Evidence string `json:"evidence"`
	// ServerArgs are the command line of the first server node (from its
	// node-args annotation): what k3s or RKE2 was started with.
	ServerArgs []string `json:"serverArgs,omitempty"`
	// CNIConfDir and CNIBinDir are the node directories its container
	// runtime reads CNI configurations and binaries from, when they are
	// not /etc/cni/net.d and /opt/cni/bin.
	CNIConfDir string `json:"cniConfDir,omitempty"`
	CNIBinDir  string `json:"cniBinDir,omitempty"`
}

// Flag returns the value of a server flag, "" when it is not set; a
// boolean flag given alone reads "true".
func (d *Distribution) Flag(name string) string {
	if d == nil {
		return ""
	}
	for i, a := range d.ServerArgs {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name {
			if i+1 < len(d.ServerArgs) && !strings.HasPrefix(d.ServerArgs[i+1], "--") {
				return d.ServerArgs[i+1]
			}
			return "true"
		}
	}
	return ""
}

// nodeArgs parses a node-args annotation (a JSON array of strings).
func nodeArgs(n *corev1.Node, ann string) ([]string, bool) {
	v, ok := n.Annotations[ann]
	if !ok {
		return nil, false
	}
	var out []string
	if json.Unmarshal([]byte(v), &out) != nil {
		return nil, true
	}
	return out, true
}

// analyzeDistribution recognises k3s and RKE2 from the nodes: the kubelet
// version's +k3s / +rke2 suffix or the node-args annotation each sets.
func analyzeDistribution(s *Snapshot) *Distribution {
	var d *Distribution
	for i := range s.Nodes {
		n := &s.Nodes[i]
		kv := n.Status.NodeInfo.KubeletVersion
		name, ann := "", ""
		switch {
		case strings.Contains(kv, "+k3s") || n.Annotations[annK3sNodeArgs] != "":
			name, ann = DistroK3s, annK3sNodeArgs
		case strings.Contains(kv, "+rke2") || n.Annotations[annRKE2NodeArgs] != "":
			name, ann = DistroRKE2, annRKE2NodeArgs
		default:
			continue
		}
		if d == nil {
			d = &Distribution{Name: name, Version: kv}
			var ev []string
			if strings.Contains(kv, "+"+name) {
				ev = append(ev, "kubelet "+kv)
			}
			if _, ok := n.Annotations[ann]; ok {
				ev = append(ev, ann)
			}
			d.Evidence = "node " + n.Name + ": " + strings.Join(ev, ", ")
			if name == DistroK3s {
				d.CNIConfDir, d.CNIBinDir = K3sCNIConfDir, K3sCNIBinDir
			}
		}
		if d.Name != name {
			continue
		}
		if args, ok := nodeArgs(n, ann); ok && len(args) > 0 && args[0] == "server" && d.ServerArgs == nil {
			d.ServerArgs = args
		}
	}
	return d
}

// RKE2Chart names the RKE2 HelmChart (kube-system/rke2-<cni>) that
// installs the CNI, "" when it is not one of RKE2's packaged CNIs: its
// canal is the rke2-canal DaemonSet, its calico the Tigera operator's
// (docs.rke2.io: CNI charts are named rke2-<cni> in kube-system).
func RKE2Chart(cni *CNI) string {
	switch {
	case cni.Name == canalName && cni.DaemonSet == "rke2-canal":
		return "rke2-canal"
	case cni.Name == calicoName && cni.Install == "operator":
		return "rke2-calico"
	}
	return ""
}
