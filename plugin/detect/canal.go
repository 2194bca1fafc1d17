package detect

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const canalName = "canal"

// Canal detects Canal: flannel's networking with Calico's Felix enforcing
// policy, in the canal DaemonSet.
func Canal() Detector {
	return Detector{
		Name: canalName,
		DaemonSet: func(ds *appsv1.DaemonSet) bool {
			// rke2-canal: RKE2's packaged Canal (its rke2-canal HelmChart).
			return ds.Name == "canal" || ds.Name == "rke2-canal" || ds.Labels["k8s-app"] == "canal"
		},
		CalicoResources: true,
		Analyze: func(s *Snapshot, ds *appsv1.DaemonSet, _ []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			return analyzeCanal(s, ds)
		},
		Defaults: Defaults{UDPPorts: []int{FlannelVXLANDefaultPort}, EnforcesPolicy: true},
	}
}

// analyzeCanal reads Canal: flannel networking (its net-conf.json in
// canal-config) with Calico's Felix enforcing policy.
func analyzeCanal(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := flannelLike(s, ds, canalName, "canal-config")
	cni.EnforcesPolicy = true
	if ctr := container(ds, "calico/node", "calico-node"); ctr != nil {
		cni.Version = imageTag(ctr.Image)
	}
	if cm := s.ConfigMap(ds.Namespace, cni.ConfigMap); cm != nil && cni.Backend.MTU == 0 {
		cni.Backend.MTU, _ = strconv.Atoi(cm.Data["veth_mtu"]) // "0": auto-detected
	}
	// Calico's pools do not hand out Canal's addresses (host-local IPAM
	// does, from the nodes' podCIDRs), but felix masquerades traffic from
	// those with natOutgoing (calico-node creates one from kubeadm's
	// podSubnet when it first starts).
	cni.Pools = calicoIPPools(s)
	return cni, networkCIDRs(cni.Network, "canal "+cni.ConfigMap+" net-conf.json Network")
}
