package detect

import (
	"encoding/json"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kube-router's defaults, from its code and manifests.
const (
	// KubeRouterFoUDefaultPort is kube-router's --overlay-encap-port default.
	KubeRouterFoUDefaultPort = 5555
)

const kubeRouterName = "kube-router"

// KubeRouter detects kube-router: its DaemonSet.
func KubeRouter() Detector {
	return Detector{
		Name: kubeRouterName,
		DaemonSet: func(ds *appsv1.DaemonSet) bool {
			return ds.Name == "kube-router" || ds.Labels["k8s-app"] == "kube-router"
		},
		Analyze: func(s *Snapshot, ds *appsv1.DaemonSet, _ []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			return analyzeKubeRouter(s, ds)
		},
		Defaults: Defaults{
			NoUDPPorts:     "its default overlay is IP-in-IP, which uses no UDP port (only --overlay-encap=fou does)",
			EnforcesPolicy: true,
		},
	}
}

// analyzeKubeRouter reads kube-router's DaemonSet: --run-router (BGP),
// --enable-overlay with its type and encapsulation, --run-firewall
// (NetworkPolicy) and --run-service-proxy. Pods get addresses from the
// nodes' podCIDRs.
func analyzeKubeRouter(s *Snapshot, ds *appsv1.DaemonSet) (*CNI, []SourcedCIDR) {
	cni := &CNI{Name: kubeRouterName, Namespace: ds.Namespace, DaemonSet: ds.Name, IPAM: "kubernetes"}
	kr := container(ds, "cloudnativelabs/kube-router", "kube-router")
	if kr != nil {
		cni.Version = imageTag(kr.Image)
	}
	argv := args(kr)
	if boolFlag(argv, "--run-router", true) {
		cni.Routing = "bgp"
	}
	cni.EnforcesPolicy = boolFlag(argv, "--run-firewall", true)
	cni.ServiceProxy = boolFlag(argv, "--run-service-proxy", true)
	cni.Backend.Type = "none"
	if boolFlag(argv, "--enable-overlay", true) {
		encap := flagValue(argv, "--overlay-encap")
		if encap == "" {
			encap = "ipip"
		}
		cni.Backend.Type = encap
		if t := flagValue(argv, "--overlay-type"); t == "" || t == "subnet" {
			cni.Backend.Type += "-cross-subnet"
		}
		if encap == "fou" {
			cni.Backend.Port, _ = strconv.Atoi(flagValue(argv, "--overlay-encap-port"))
			if cni.Backend.Port == 0 {
				cni.Backend.Port, cni.Backend.PortDefaulted = KubeRouterFoUDefaultPort, true
			}
			cni.UDPPorts = []int{cni.Backend.Port}
		}
	}
	for _, name := range referencedConfigMaps(ds) {
		cm := s.ConfigMap(ds.Namespace, name)
		if cm == nil || cm.Data["cni-conf.json"] == "" {
			continue
		}
		cni.ConfigMap = name
		cni.PortMap = ChainsPortmap(cm.Data["cni-conf.json"])
		var conf struct {
			MTU     int `json:"mtu"`
			Plugins []struct {
				MTU int `json:"mtu"`
			} `json:"plugins"`
		}
		if json.Unmarshal([]byte(cm.Data["cni-conf.json"]), &conf) == nil {
			cni.Backend.MTU = conf.MTU
			for _, p := range conf.Plugins {
				if p.MTU != 0 {
					cni.Backend.MTU = p.MTU
				}
			}
		}
		break
	}
	return cni, nil
}
