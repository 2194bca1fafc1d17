package detect

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// calicoOperator reads what the Tigera operator's Installation in says
// about Calico into cni, and returns the pool the operator creates when the
// Installation lists none (the IPPool objects, once there, win).
func calicoOperator(cni *CNI, ds *appsv1.DaemonSet, in *unstructured.Unstructured, kubeadm kubeadmConfig) IPPool {
	var inst installation
	fromUnstructured(in, &inst)
	cni.Install, cni.Installation = "operator", in.GetName()
	if ds == nil {
		cni.Namespace, cni.DaemonSet = "calico-system", "calico-node"
	}
	if cni.Version == "" {
		cni.Version = inst.Status.CalicoVersion
	}
	if t := inst.Spec.CNI.IPAM.Type; t == "HostLocal" {
		cni.IPAM = "kubernetes"
	}
	net := inst.Spec.CalicoNetwork
	var auto *addrAutodetect
	// The operator chains portmap unless calicoNetwork.hostPorts is
	// Disabled (its default is Enabled).
	cni.PortMap = net == nil || net.HostPorts != "Disabled"
	if net != nil {
		if net.BGP == "Disabled" {
			cni.Routing = ""
		}
		cni.Backend.MTU = net.MTU
		if net.LinuxDataplane != "" {
			cni.Dataplane = strings.ToLower(net.LinuxDataplane)
		}
		auto = net.NodeAddressAutodetectionV4
	}
	cni.NodeAddressAutodetection = auto.method()
	if t := inst.Spec.CNI.Type; t != "" && t != "Calico" {
		// Calico enforces policy only; the pod network is another's.
		cni.IPAM, cni.Routing = strings.ToLower(t), ""
		cni.Backend.Type = "policy-only (" + t + ")"
	}
	encap := "ipip"
	if cni.Routing == "" {
		encap = "vxlan"
	}
	cidr, src := CalicoDefaultPoolCIDR, "calico operator's default pool (Installation "+in.GetName()+" lists none)"
	if kubeadm.PodSubnet != "" {
		cidr, src = kubeadm.PodSubnet, "calico operator's default pool, from kubeadm-config networking.podSubnet (Installation "+in.GetName()+" lists none)"
	}
	defaultPool := IPPool{Name: "default-ipv4-ippool", CIDR: cidr, Encapsulation: encap, BlockSize: CalicoDefaultBlockSize, NATOutgoing: true, Source: src}
	if net != nil && len(net.IPPools) > 0 {
		var pools []IPPool
		for _, p := range net.IPPools {
			if p.CIDR == "" || strings.Contains(p.CIDR, ":") {
				continue
			}
			bs := p.BlockSize
			if bs == 0 {
				bs = CalicoDefaultBlockSize
			}
			e := operatorEncapsulation(p.Encapsulation)
			if e == "" {
				e = encap
			}
			pools = append(pools, IPPool{Name: p.Name, CIDR: p.CIDR, Encapsulation: e, BlockSize: bs,
				NATOutgoing: p.NATOutgoing != "Disabled", Disabled: p.Disabled, Source: "calico Installation " + in.GetName() + " spec.calicoNetwork.ipPools"})
		}
		if len(pools) > 0 {
			cni.Pools = pools
		}
	}
	return defaultPool
}

// installation is the part of an operator.tigera.io/v1 Installation read here.
type installation struct {
	Spec struct {
		CNI struct {
			Type string `json:"type"`
			IPAM struct {
				Type string `json:"type"`
			} `json:"ipam"`
		} `json:"cni"`
		CalicoNetwork *struct {
			BGP       string `json:"bgp"`
			MTU       int    `json:"mtu"`
			HostPorts string `json:"hostPorts"`
			IPPools   []struct {
				Name          string `json:"name"`
				CIDR          string `json:"cidr"`
				Encapsulation string `json:"encapsulation"`
				BlockSize     int    `json:"blockSize"`
				NATOutgoing   string `json:"natOutgoing"`
				Disabled      bool   `json:"disableNewAllocations"`
			} `json:"ipPools"`
			LinuxDataplane             string          `json:"linuxDataplane"`
			NodeAddressAutodetectionV4 *addrAutodetect `json:"nodeAddressAutodetectionV4"`
		} `json:"calicoNetwork"`
	} `json:"spec"`
	Status struct {
		CalicoVersion string `json:"calicoVersion"`
	} `json:"status"`
}

// addrAutodetect is the operator's NodeAddressAutodetection.
type addrAutodetect struct {
	FirstFound    *bool    `json:"firstFound"`
	Kubernetes    string   `json:"kubernetes"`
	Interface     string   `json:"interface"`
	SkipInterface string   `json:"skipInterface"`
	CanReach      string   `json:"canReach"`
	CIDRS         []string `json:"cidrs"`
}

// method renders it the way calico-node's IP_AUTODETECTION_METHOD takes it
// (which is what the operator sets).
func (a *addrAutodetect) method() string {
	switch {
	case a == nil:
		return "first-found"
	case a.Kubernetes != "":
		return "kubernetes-internal-ip"
	case a.Interface != "":
		return "interface=" + a.Interface
	case a.SkipInterface != "":
		return "skip-interface=" + a.SkipInterface
	case a.CanReach != "":
		return "can-reach=" + a.CanReach
	case len(a.CIDRS) > 0:
		return "cidr=" + strings.Join(a.CIDRS, ",")
	}
	return "first-found"
}

// operatorEncapsulation maps the Installation's pool encapsulation.
func operatorEncapsulation(e string) string {
	switch e {
	case "VXLAN":
		return "vxlan"
	case "VXLANCrossSubnet":
		return "vxlan-cross-subnet"
	case "IPIP":
		return "ipip"
	case "IPIPCrossSubnet":
		return "ipip-cross-subnet"
	case "None":
		return "none"
	}
	return strings.ToLower(e)
}
