package sourcecni

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// kubeRouter: kube-router's DaemonSet, routing pods with BGP
// (--run-router), optionally an overlay, enforcing policy
// (--run-firewall) and proxying Services (--run-service-proxy).
func kubeRouter() Source {
	return Source{
		ID:     KubeRouter,
		Name:   detect.KubeRouter().Name,
		Detect: detect.KubeRouter(),
		Checks: Checks{Backend: kubeRouterBackend},
		SNAT:   SNAT{OldToNew: notAnalysed},
		Finalize: Finalize{
			Owned: func(cni *detect.CNI) Owned {
				return Owned{ConfigMaps: nonEmpty(cni.ConfigMap)}
			},
			ForeignMount: func(ns, cm string) string {
				return fmt.Sprintf("ConfigMap %s/%s: kube-router mounts it (its kubeconfig) but it is not kube-router's", ns, cm)
			},
		},
		Node: Node{
			Leftovers: "kube-router's interfaces (kube-bridge, kube-dummy-if, tun-* tunnels), its iptables rules (KUBE-ROUTER-*), IPVS services, routes to the old pod CIDR",
			ByHand:    "kube-router --cleanup-config, or: ip link delete kube-bridge; ip link delete kube-dummy-if; ipvsadm --clear; iptables-save | grep -v KUBE-ROUTER | iptables-restore",
		},
		Plan: Plan{BGP: "--run-router"},
	}
}

func kubeRouterBackend(cni *detect.CNI) Finding {
	const id = ""
	b := cni.Backend
	if cni.Routing != "bgp" {
		return warn(id, "kube-router runs without --run-router: something else routes pods between nodes, which this plugin cannot see",
			"make sure that routing keeps working for the old pod network until finalize, and rehearse on a staging cluster first")
	}
	overlay := "no overlay (--enable-overlay=false): every node must reach the others' pod CIDRs by routing"
	switch {
	case strings.HasSuffix(b.Type, "-cross-subnet"):
		overlay = strings.TrimSuffix(b.Type, "-cross-subnet") + " between subnets (--overlay-type=subnet), native routing within a subnet"
	case b.Type != "none":
		overlay = b.Type + " between all nodes (--overlay-type=full)"
	}
	if b.Port != 0 {
		overlay += fmt.Sprintf(", UDP port %d", b.Port)
	}
	return warn(id, "kube-router routes pods with BGP (--run-router), "+overlay+": outside the guide's tested path (not tested with BGP routing); Cilium's tunnel runs beside it",
		"rehearse on a staging cluster first; if kube-router peers with routers outside the cluster (--peer-router-ips), plan routes to Cilium's pod CIDR too")
}
