package detect

import (
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const k3sFlannelName = "k3s-flannel"

// K3sFlannel detects the flannel built into the k3s binary: it runs in the
// k3s process, so there is no DaemonSet (k3s-io/k3s discussion #7027);
// the nodes tell, with k3s's annotations and flannel's
// flannel.alpha.coreos.com ones, unless k3s was started with
// --flannel-backend=none (then another CNI, maybe a flannel DaemonSet, runs).
func K3sFlannel() Detector {
	return Detector{
		Name:      k3sFlannelName,
		DaemonSet: func(*appsv1.DaemonSet) bool { return false }, // none: see Embedded
		Embedded:  k3sFlannelEvidence,
		Analyze: func(s *Snapshot, _ *appsv1.DaemonSet, _ []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			return analyzeK3sFlannel(s)
		},
		// k3s's embedded network policy controller enforces NetworkPolicy
		// unless --disable-network-policy (docs.k3s.io).
		Defaults: Defaults{UDPPorts: []int{FlannelVXLANDefaultPort}, EnforcesPolicy: true},
	}
}

// k3sFlannelEvidence says which nodes show k3s's own flannel, "" for none.
func k3sFlannelEvidence(s *Snapshot) string {
	d := analyzeDistribution(s)
	if d == nil || d.Name != DistroK3s || d.Flag("flannel-backend") == "none" {
		return ""
	}
	for i := range s.DaemonSets {
		if sourceCNIOf(&s.DaemonSets[i]) == flannelName || sourceCNIOf(&s.DaemonSets[i]) == canalName {
			return "" // a flannel of its own: k3s's was turned off
		}
	}
	var nodes []string
	for i := range s.Nodes {
		if s.Nodes[i].Annotations[annFlannelBackendType] != "" {
			nodes = append(nodes, s.Nodes[i].Name)
		}
	}
	if len(nodes) == 0 {
		return ""
	}
	return fmt.Sprintf("k3s %s, flannel annotations on %d of %d nodes", d.Version, len(nodes), len(s.Nodes))
}

// analyzeK3sFlannel reads k3s's flannel from the server's command line
// (--cluster-cidr, --flannel-backend, --disable-network-policy) and the
// nodes' flannel annotations, with k3s's defaults for what is not set.
func analyzeK3sFlannel(s *Snapshot) (*CNI, []SourcedCIDR) {
	d := analyzeDistribution(s)
	on := true // k3s's flannel masquerades IPv4 traffic leaving its network
	cni := &CNI{Name: k3sFlannelName, Embedded: DistroK3s, IPAM: "kubernetes", IPMasq: &on, EnforcesPolicy: true}
	if d != nil {
		cni.Version = d.Version
		if v := d.Flag("disable-network-policy"); v == "true" {
			cni.EnforcesPolicy = false
		}
	}
	network, source := d.Flag("cluster-cidr"), "k3s --cluster-cidr (k3s.io/node-args)"
	if network == "" {
		network, source = K3sDefaultClusterCIDR, "k3s's default --cluster-cidr (not in k3s.io/node-args)"
	}
	cni.Network = network

	b := Backend{Type: d.Flag("flannel-backend")}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if b.Type == "" {
			b.Type = n.Annotations[annFlannelBackendType]
		}
		if b.VNI == 0 && n.Annotations[annFlannelBackendData] != "" {
			var data struct{ VNI int }
			if json.Unmarshal([]byte(n.Annotations[annFlannelBackendData]), &data) == nil {
				b.VNI = data.VNI
			}
		}
	}
	if b.Type == "" {
		b.Type = "vxlan" // k3s's default --flannel-backend
	}
	switch b.Type {
	case "vxlan":
		b.Port, b.PortDefaulted = FlannelVXLANDefaultPort, true
		if b.VNI == 0 {
			b.VNI = 1
		}
	case "wireguard-native":
		b.Port, b.PortDefaulted = 51820, true
	default:
		b.VNI = 0
	}
	cni.Backend = b
	cni.UDPPorts = uniqueInts(b.Port)
	var cidrs []SourcedCIDR
	for _, p := range strings.Split(network, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cidrs = append(cidrs, SourcedCIDR{CIDR: p, Source: source})
		}
	}
	return cni, cidrs
}
