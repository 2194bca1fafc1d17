package detect

import (
	"strconv"
	"strings"
)

// calicoManifest reads a manifest install (calico.yaml: the calico-node
// DaemonSet's environment and calico-config) into cni, and returns the
// pool calico-node creates when it first starts (the IPPool objects, once
// there, win); none with NO_DEFAULT_POOLS.
func calicoManifest(s *Snapshot, cni *CNI, env map[string]string, kubeadm kubeadmConfig) IPPool {
	cni.Install = "manifest"
	if s.ConfigMap(cni.Namespace, "calico-config") != nil {
		cni.ConfigMap = "calico-config"
	}
	cm := s.ConfigMap(cni.Namespace, "calico-config")
	backend := env["CALICO_NETWORKING_BACKEND"]
	if backend == "" && cm != nil {
		backend = cm.Data["calico_backend"]
	}
	if backend == "" {
		backend = "bird"
	}
	if backend != "bird" {
		cni.Routing = ""
	}
	if cm != nil {
		cni.Backend.MTU, _ = strconv.Atoi(cm.Data["veth_mtu"])
		if conf := cm.Data["cni_network_config"]; strings.Contains(conf, "host-local") && !strings.Contains(conf, "calico-ipam") {
			cni.IPAM = "kubernetes"
		}
		cni.PortMap = ChainsPortmap(cm.Data["cni_network_config"])
	}
	if strings.EqualFold(env["FELIX_BPFENABLED"], "true") {
		cni.Dataplane = "bpf"
	} else if strings.EqualFold(env["FELIX_NFTABLESMODE"], "enabled") {
		cni.Dataplane = "nftables"
	}
	switch ip := env["IP"]; ip {
	case "", "autodetect":
		cni.NodeAddressAutodetection = env["IP_AUTODETECTION_METHOD"]
		if cni.NodeAddressAutodetection == "" {
			cni.NodeAddressAutodetection = "first-found"
		}
	case "none":
		cni.NodeAddressAutodetection = "none"
	default:
		cni.NodeAddressAutodetection = "IP=" + ip
	}
	if !strings.EqualFold(env["NO_DEFAULT_POOLS"], "true") {
		cidr, src := env["CALICO_IPV4POOL_CIDR"], "calico-node CALICO_IPV4POOL_CIDR (the pool it creates when it first starts; no IPPool yet)"
		switch {
		case cidr != "":
		case kubeadm.PodSubnet != "":
			cidr, src = kubeadm.PodSubnet, "calico-node's default from kubeadm-config networking.podSubnet (the pool it creates when it first starts; no IPPool yet)"
		default:
			cidr, src = CalicoDefaultPoolCIDR, "calico-node's default (the pool it creates when it first starts; no IPPool yet)"
		}
		bs, _ := strconv.Atoi(env["CALICO_IPV4POOL_BLOCK_SIZE"])
		if bs == 0 {
			bs = CalicoDefaultBlockSize
		}
		return IPPool{Name: "default-ipv4-ippool", CIDR: strings.Split(cidr, ",")[0], BlockSize: bs,
			Encapsulation: encapsulation(env["CALICO_IPV4POOL_VXLAN"], env["CALICO_IPV4POOL_IPIP"]),
			NATOutgoing:   !strings.EqualFold(env["CALICO_IPV4POOL_NAT_OUTGOING"], "false"), Source: src}
	}
	return IPPool{}
}
