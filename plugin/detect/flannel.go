package detect

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const flannelName = "flannel"

// Flannel detects flannel: its DaemonSet (kube-flannel-ds, or
// kube-flannel-ds-<arch> in old manifests) and net-conf.json.
func Flannel() Detector {
	return Detector{
		Name:      flannelName,
		DaemonSet: isFlannelDS,
		Analyze: func(s *Snapshot, ds *appsv1.DaemonSet, _ []*unstructured.Unstructured) (*CNI, []SourcedCIDR) {
			cni := analyzeFlannel(s, ds)
			return cni, networkCIDRs(cni.Network, cni.Name+" net-conf.json Network")
		},
		Defaults: Defaults{UDPPorts: []int{FlannelVXLANDefaultPort}, EnforcesPolicy: false},
	}
}

// FlannelVXLANDefaultPort is the port flannel's vxlan backend uses on
// Linux when net-conf.json sets none (the kernel's historical default).
const FlannelVXLANDefaultPort = 8472

// isFlannelDS matches flannel's DaemonSet (kube-flannel-ds in current
// manifests, kube-flannel-ds-<arch> in old ones) but not Canal's.
func isFlannelDS(ds *appsv1.DaemonSet) bool {
	return strings.Contains(ds.Name, "flannel") || ds.Labels["app"] == "flannel" && ds.Name != "canal"
}

// flannelNetConf is flannel's net-conf.json. encoding/json matches field
// names case-insensitively, as flannel itself does.
type flannelNetConf struct {
	Network     string
	IPv6Network string
	Backend     struct {
		Type       string
		Port       int
		VNI        int
		ListenPort int
		MTU        int
	}
}

// ParseFlannelNetConf parses net-conf.json and fills in flannel's defaults.
func ParseFlannelNetConf(data string) (network string, b Backend, err error) {
	var nc flannelNetConf
	if err := json.Unmarshal([]byte(data), &nc); err != nil {
		return "", Backend{}, fmt.Errorf("net-conf.json is not valid JSON: %v", err)
	}
	b.Type = strings.ToLower(nc.Backend.Type)
	if b.Type == "" {
		b.Type = "udp" // flannel's own default when Backend.Type is unset
	}
	b.MTU = nc.Backend.MTU
	switch b.Type {
	case "vxlan":
		b.Port, b.VNI = nc.Backend.Port, nc.Backend.VNI
		if b.Port == 0 {
			b.Port, b.PortDefaulted = FlannelVXLANDefaultPort, true
		}
		if b.VNI == 0 {
			b.VNI = 1
		}
	case "udp":
		b.Port = nc.Backend.Port
		if b.Port == 0 {
			b.Port, b.PortDefaulted = 8285, true
		}
	case "wireguard":
		b.Port = nc.Backend.ListenPort
		if b.Port == 0 {
			b.Port, b.PortDefaulted = 51820, true
		}
	}
	return nc.Network, b, nil
}

func analyzeFlannel(s *Snapshot, ds *appsv1.DaemonSet) *CNI {
	cni := flannelLike(s, ds, flannelName, "kube-flannel-cfg")
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		if strings.Contains(ctr.Image, "flannel") {
			cni.Version = imageTag(ctr.Image)
			break
		}
	}
	return cni
}

// flannelLike reads flannel's net-conf.json from the ConfigMaps the
// DaemonSet mounts (or fallbackCM), else the backend from the node
// annotations: flannel's own DaemonSet, and Canal's.
func flannelLike(s *Snapshot, ds *appsv1.DaemonSet, name, fallbackCM string) *CNI {
	cni := &CNI{Name: name, Namespace: ds.Namespace, DaemonSet: ds.Name, IPAM: "kubernetes"}
	cni.IPMasq = flannelIPMasq(s, ds)
	if ctr := container(ds, "flannel", "kube-flannel", "flannel"); ctr != nil {
		for i := range ds.Spec.Template.Spec.Containers {
			if &ds.Spec.Template.Spec.Containers[i] == ctr {
				cni.FlannelContainer = &ContainerRef{Name: ctr.Name, Index: i, Command: ctr.Command, Args: ctr.Args}
			}
		}
	}
	names := mountedConfigMaps(ds)
	names = append(names, fallbackCM)
	for _, cmName := range names {
		cm := s.ConfigMap(ds.Namespace, cmName)
		if cm == nil || cm.Data["net-conf.json"] == "" {
			continue
		}
		cni.ConfigMap = cmName
		cni.PortMap = ChainsPortmap(cm.Data["cni-conf.json"]) || ChainsPortmap(cm.Data["cni_network_config"])
		if network, b, err := ParseFlannelNetConf(cm.Data["net-conf.json"]); err == nil {
			cni.Network, cni.Backend = network, b
		}
		break
	}
	if cni.Backend.Type == "" {
		// No readable net-conf.json: fall back to the node annotations.
		for i := range s.Nodes {
			if t := s.Nodes[i].Annotations[annFlannelBackendType]; t != "" {
				cni.Backend.Type = t
				if t == "vxlan" {
					cni.Backend.Port, cni.Backend.PortDefaulted = FlannelVXLANDefaultPort, true
				}
				break
			}
		}
	}
	cni.UDPPorts = uniqueInts(cni.Backend.Port)
	return cni
}

// flannelIPMasq reads flanneld's --ip-masq from a flannel or Canal
// DaemonSet: the flag in the flannel container's command or arguments, else
// the FLANNELD_IP_MASQ variable (flanneld reads every flag from FLANNELD_*
// variables; Canal sets this one from canal-config's masquerade key).
// flanneld's own default is off. nil when no flannel container is found.
func flannelIPMasq(s *Snapshot, ds *appsv1.DaemonSet) *bool {
	ctr := container(ds, "flannel", "kube-flannel", "flannel")
	if ctr == nil {
		return nil
	}
	on := false
	if v, ok := envOf(s, ds.Namespace, ctr)["FLANNELD_IP_MASQ"]; ok {
		on, _ = strconv.ParseBool(v)
	}
	on = boolFlag(args(ctr), "--ip-masq", on)
	return &on
}
