package detect

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Calico's defaults, from its code and manifests.
const (
	// CalicoVXLANDefaultPort is Felix's vxlanPort default (the IANA port).
	CalicoVXLANDefaultPort = 4789
	// CalicoVXLANDefaultVNI is Felix's vxlanVNI default.
	CalicoVXLANDefaultVNI = 4096
	// CalicoDefaultPoolCIDR is calico-node's and the operator's default
	// pool when neither the environment nor kubeadm-config gives one.
	CalicoDefaultPoolCIDR = "192.168.0.0/16"
	// CalicoDefaultBlockSize is the default per-node IPAM block.
	CalicoDefaultBlockSize = 26
	// CalicoWireguardPort is Felix's wireguardListeningPort default.
	CalicoWireguardPort = 51820
)

const calicoName = "calico"

// Calico detects Calico, installed from a manifest (the calico-node
// DaemonSet and calico-config) or by the Tigera operator (its
// Installation, and calico-node in calico-system).
func Calico() Detector {
	return Detector{
		Name: calicoName,
		DaemonSet: func(ds *appsv1.DaemonSet) bool {
			return ds.Name == "calico-node" || ds.Labels["k8s-app"] == "calico-node"
		},
		Installations:   true,
		CalicoResources: true,
		Analyze: func(s *Snapshot, ds *appsv1.DaemonSet, installations []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			var in *unstructured.Unstructured
			for _, i := range installations {
				if in == nil || i.GetName() == "default" {
					in = i
				}
			}
			return analyzeCalico(s, ds, in)
		},
		Defaults: Defaults{UDPPorts: []int{CalicoVXLANDefaultPort}, EnforcesPolicy: true},
	}
}

// calicoIPPools reads the crd.projectcalico.org IPPools of the snapshot
// (IPv4 ones; those that cannot be read are skipped).
func calicoIPPools(s *Snapshot) []IPPool {
	var out []IPPool
	for i := range s.CalicoIPPools {
		var p calicoPool
		if !fromUnstructured(&s.CalicoIPPools[i], &p) || p.Spec.CIDR == "" || strings.Contains(p.Spec.CIDR, ":") {
			continue
		}
		ipip := p.Spec.IPIPMode
		if ipip == "" && p.Spec.IPIP != nil && p.Spec.IPIP.Enabled {
			ipip = p.Spec.IPIP.Mode
			if ipip == "" {
				ipip = "Always"
			}
		}
		bs := p.Spec.BlockSize
		if bs == 0 {
			bs = CalicoDefaultBlockSize
		}
		out = append(out, IPPool{Name: p.Metadata.Name, CIDR: p.Spec.CIDR, Encapsulation: encapsulation(p.Spec.VXLANMode, ipip),
			BlockSize: bs, NATOutgoing: p.Spec.NATOutgoing, Disabled: p.Spec.Disabled, Source: "calico IPPool " + p.Metadata.Name})
	}
	return out
}

// calicoPool is the part of a crd.projectcalico.org/v1 IPPool read here.
type calicoPool struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		CIDR        string `json:"cidr"`
		VXLANMode   string `json:"vxlanMode"`
		IPIPMode    string `json:"ipipMode"`
		BlockSize   int    `json:"blockSize"`
		NATOutgoing bool   `json:"natOutgoing"`
		Disabled    bool   `json:"disabled"`
		// IPIP is the pre-3.0 form of ipipMode.
		IPIP *struct {
			Enabled bool   `json:"enabled"`
			Mode    string `json:"mode"`
		} `json:"ipip"`
	} `json:"spec"`
}

// encapsulation turns Calico's two pool modes into one word.
func encapsulation(vxlanMode, ipipMode string) string {
	switch strings.ToLower(vxlanMode) {
	case "always":
		return "vxlan"
	case "crosssubnet", "cross-subnet":
		return "vxlan-cross-subnet"
	}
	switch strings.ToLower(ipipMode) {
	case "always":
		return "ipip"
	case "crosssubnet", "cross-subnet":
		return "ipip-cross-subnet"
	}
	return "none"
}

// analyzeCalico reads a Calico install: the operator's Installation when
// there is one (in), else the calico-node DaemonSet and calico-config of a
// manifest install. IPPool objects, when calico-node or the operator has
// created them, are the pools; before that, the pools they would create.
func analyzeCalico(s *Snapshot, ds *appsv1.DaemonSet, in *unstructured.Unstructured) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: calicoName, EnforcesPolicy: true, IPAM: "calico", Routing: "bgp", Dataplane: "iptables"}
	if ds != nil {
		cni.Namespace, cni.DaemonSet = ds.Namespace, ds.Name
	}
	node := container(ds, "calico/node", "calico-node")
	if node != nil {
		cni.Version = imageTag(node.Image)
	}
	env := map[string]string{}
	if ds != nil {
		env = envOf(s, ds.Namespace, node)
	}
	kubeadm := parseKubeadm(s.ConfigMap("kube-system", "kubeadm-config"))

	var defaultPool IPPool
	if in != nil {
		defaultPool = calicoOperator(cni, ds, in, kubeadm)
	} else {
		defaultPool = calicoManifest(s, cni, env, kubeadm)
	}

	// IPPool objects win over what the installer would create.
	if pools := calicoIPPools(s); len(s.CalicoIPPools) > 0 {
		cni.Pools = pools
	}
	if len(cni.Pools) == 0 && defaultPool.CIDR != "" {
		cni.Pools = []IPPool{defaultPool}
	}

	// Felix: the VXLAN port and VNI, MTU, eBPF and WireGuard.
	var felix struct {
		Spec struct {
			VXLANPort        int    `json:"vxlanPort"`
			VXLANVNI         int    `json:"vxlanVNI"`
			VXLANMTU         int    `json:"vxlanMTU"`
			BPFEnabled       bool   `json:"bpfEnabled"`
			WireguardEnabled bool   `json:"wireguardEnabled"`
			WireguardPort    int    `json:"wireguardListeningPort"`
			NFTablesMode     string `json:"nftablesMode"`
			IPIPMTU          int    `json:"ipipMTU"`
			IptablesMarkMask uint32 `json:"iptablesMarkMask"`
		} `json:"spec"`
	}
	fromUnstructured(s.CalicoFelixConfig, &felix)
	port, portDefaulted := felix.Spec.VXLANPort, false
	if port == 0 {
		port, _ = strconv.Atoi(env["FELIX_VXLANPORT"])
	}
	if port == 0 {
		port, portDefaulted = CalicoVXLANDefaultPort, true
	}
	vni := felix.Spec.VXLANVNI
	if vni == 0 {
		vni, _ = strconv.Atoi(env["FELIX_VXLANVNI"])
	}
	if vni == 0 {
		vni = CalicoVXLANDefaultVNI
	}
	if felix.Spec.BPFEnabled {
		cni.Dataplane = "bpf"
	}
	if strings.EqualFold(felix.Spec.NFTablesMode, "Enabled") && cni.Dataplane == "iptables" {
		cni.Dataplane = "nftables"
	}
	cni.FelixMarkMask = felix.Spec.IptablesMarkMask
	if m, err := strconv.ParseUint(strings.TrimSpace(env["FELIX_IPTABLESMARKMASK"]), 0, 32); cni.FelixMarkMask == 0 && err == nil {
		cni.FelixMarkMask = uint32(m)
	}
	wgPort := 0
	if felix.Spec.WireguardEnabled || strings.EqualFold(env["FELIX_WIREGUARDENABLED"], "true") {
		wgPort = felix.Spec.WireguardPort
		if wgPort == 0 {
			wgPort = CalicoWireguardPort
		}
		cni.Backend.Encryption = "wireguard"
	}

	var encaps []string
	vxlan := false
	for _, p := range cni.Pools {
		if p.Disabled {
			continue
		}
		if !contains(encaps, p.Encapsulation) {
			encaps = append(encaps, p.Encapsulation)
		}
		vxlan = vxlan || strings.HasPrefix(p.Encapsulation, "vxlan")
	}
	if cni.Backend.Type == "" {
		cni.Backend.Type = strings.Join(encaps, ",")
	}
	if vxlan {
		cni.Backend.Port, cni.Backend.PortDefaulted, cni.Backend.VNI = port, portDefaulted, vni
		if felix.Spec.VXLANMTU != 0 && cni.Backend.MTU == 0 {
			cni.Backend.MTU = felix.Spec.VXLANMTU
		}
	} else if felix.Spec.IPIPMTU != 0 && cni.Backend.MTU == 0 {
		cni.Backend.MTU = felix.Spec.IPIPMTU
	}
	// Felix binds the VXLAN port as soon as a pool uses VXLAN, which the
	// backend check advises: keep Cilium off it whatever the pools say now.
	cni.UDPPorts = uniqueInts(port, wgPort)

	var cidrs []SourcedCIDR
	var nets []string
	for _, p := range cni.Pools {
		cidrs = append(cidrs, SourcedCIDR{CIDR: p.CIDR, Source: p.Source})
		if !p.Disabled {
			nets = append(nets, p.CIDR)
		}
	}
	cni.Network = strings.Join(nets, ",")
	return cni, cidrs
}
