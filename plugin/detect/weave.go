package detect

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Weave Net's defaults, from its code and manifests.
const (
	// WeaveDefaultRange is Weave Net's default IPALLOC_RANGE.
	WeaveDefaultRange = "10.32.0.0/12"
	// WeaveSleevePort and WeaveFastDPPort are Weave Net's UDP ports: sleeve
	// (its userspace encapsulation, and TCP 6783 for control) and fastdp
	// (VXLAN in the kernel's Open vSwitch datapath).
	WeaveSleevePort = 6783
	WeaveFastDPPort = 6784
)

const weaveName = "weave"

// Weave detects Weave Net: the weave-net DaemonSet.
func Weave() Detector {
	return Detector{
		Name: weaveName,
		DaemonSet: func(ds *appsv1.DaemonSet) bool {
			return ds.Name == "weave-net" || ds.Labels["name"] == "weave-net"
		},
		Analyze: func(s *Snapshot, ds *appsv1.DaemonSet, _ []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			return analyzeWeave(s, ds)
		},
		Defaults: Defaults{UDPPorts: []int{WeaveSleevePort, WeaveFastDPPort}, EnforcesPolicy: true},
	}
}

// analyzeWeave reads Weave Net's weave-net DaemonSet: the weave container's
// IPALLOC_RANGE, fastdp or sleeve, encryption and MTU; weave-npc enforces
// policy.
func analyzeWeave(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: weaveName, Namespace: ds.Namespace, DaemonSet: ds.Name, IPAM: "weave"}
	weave := container(ds, "weave-kube", "weave")
	if weave != nil {
		cni.Version = imageTag(weave.Image)
	}
	cni.EnforcesPolicy = container(ds, "weave-npc", "weave-npc") != nil
	env := envOf(s, ds.Namespace, weave)
	cidr, src := env["IPALLOC_RANGE"], "weave-net IPALLOC_RANGE"
	if cidr == "" {
		if v := flagValue(strings.Fields(env["EXTRA_ARGS"]), "--ipalloc-range"); v != "" {
			cidr, src = v, "weave-net EXTRA_ARGS --ipalloc-range"
		}
	}
	if cidr == "" {
		cidr, src = WeaveDefaultRange, "weave-net default IPALLOC_RANGE"
	}
	cni.Network = cidr
	cni.Backend = Backend{Type: "fastdp", Port: WeaveFastDPPort, PortDefaulted: true}
	if env["WEAVE_NO_FASTDP"] != "" {
		cni.Backend = Backend{Type: "sleeve", Port: WeaveSleevePort, PortDefaulted: true}
	}
	cni.Backend.MTU, _ = strconv.Atoi(env["WEAVE_MTU"])
	if env["WEAVE_PASSWORD"] != "" {
		cni.Backend.Encryption = "weave password (IPsec ESP with fastdp, NaCl with sleeve)"
	}
	cni.UDPPorts = []int{WeaveSleevePort, WeaveFastDPPort}
	return cni, networkCIDRs(cidr, src)
}
