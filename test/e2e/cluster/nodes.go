package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node labels, annotations and taints used for fake nodes.
const (
	ControlPlaneLabel = "node-role.kubernetes.io/control-plane"
	NodeTypeLabel     = "type" // value "kwok"

	FlannelBackendTypeAnnotation       = "flannel.alpha.coreos.com/backend-type"
	FlannelBackendDataAnnotation       = "flannel.alpha.coreos.com/backend-data"
	FlannelKubeSubnetManagerAnnotation = "flannel.alpha.coreos.com/kube-subnet-manager"
	FlannelPublicIPAnnotation          = "flannel.alpha.coreos.com/public-ip"
)

// KubeletVersion is what fake nodes report as their kubelet version.
const KubeletVersion = "v1.34.4"

// NodeSpec describes a fake node.
type NodeSpec struct {
	// Name of the node (required).
	Name string
	// ControlPlane adds the control-plane role label and its NoSchedule taint.
	ControlPlane bool
	// IP is the InternalIP. Default: the next free 127.1.x.y address.
	IP string
	// Labels and Annotations are added to the defaults.
	Labels      map[string]string
	Annotations map[string]string
	// Taints are added to the defaults.
	Taints []corev1.Taint
	// NoFlannelAnnotations leaves out the annotations flanneld would have
	// written on a node (backend-type, backend-data, kube-subnet-manager,
	// public-ip).
	NoFlannelAnnotations bool
	// FlannelVNI is the VXLAN VNI in backend-data (default 1).
	FlannelVNI int
}

// AddNodes creates fake nodes managed by kwok and waits until each is Ready
// and has podCIDRs allocated by kube-controller-manager.
func (c *Cluster) AddNodes(ctx context.Context, specs []NodeSpec) ([]*corev1.Node, error) {
	for i := range specs {
		node, err := c.nodeObject(specs[i])
		if err != nil {
			return nil, err
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return c.WaitNodesReady(ctx, names, 2*time.Minute)
}

// WaitNodesReady waits until the named nodes are Ready with podCIDRs.
func (c *Cluster) WaitNodesReady(ctx context.Context, names []string, timeout time.Duration) ([]*corev1.Node, error) {
	out := make([]*corev1.Node, len(names))
	var pending string
	err := c.poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		for i, n := range names {
			if out[i] != nil {
				continue
			}
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					pending = n + " (not found)"
					return false, nil
				}
				return false, err
			}
			if !NodeReady(node) || len(node.Spec.PodCIDRs) == 0 {
				pending = fmt.Sprintf("%s (ready=%v podCIDRs=%v)", n, NodeReady(node), node.Spec.PodCIDRs)
				return false, nil
			}
			out[i] = node
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for nodes, last pending %s: %w", pending, err)
	}
	return out, nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) nextNodeIP() string {
	c.nodeMu.Lock()
	defer c.nodeMu.Unlock()
	i := c.nodeCount
	c.nodeCount++
	return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
}

func (c *Cluster) nodeObject(s NodeSpec) (*corev1.Node, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("node spec without a name")
	}
	ip := s.IP
	if ip == "" {
		ip = c.nextNodeIP()
	}
	if parsed := net.ParseIP(ip); parsed == nil || !parsed.IsLoopback() {
		return nil, fmt.Errorf("node %s: InternalIP %q must be a loopback address", s.Name, ip)
	}
	labels := map[string]string{
		"kubernetes.io/hostname":  s.Name,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      "amd64",
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": "amd64",
		NodeTypeLabel:             "kwok",
	}
	annotations := map[string]string{
		FakeNodeAnnotation:                                       "fake",
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
	}
	var taints []corev1.Taint
	if s.ControlPlane {
		labels[ControlPlaneLabel] = ""
		labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
		taints = append(taints, corev1.Taint{Key: ControlPlaneLabel, Effect: corev1.TaintEffectNoSchedule})
	}
	if !s.NoFlannelAnnotations {
		vni := s.FlannelVNI
		if vni == 0 {
			vni = 1
		}
		data, err := json.Marshal(map[string]any{"VNI": vni, "VtepMAC": vtepMAC(s.Name)})
		if err != nil {
			return nil, err
		}
		annotations[FlannelBackendTypeAnnotation] = "vxlan"
		annotations[FlannelBackendDataAnnotation] = string(data)
		annotations[FlannelKubeSubnetManagerAnnotation] = "true"
		annotations[FlannelPublicIPAnnotation] = ip
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	for k, v := range s.Annotations {
		annotations[k] = v
	}
	taints = append(taints, s.Taints...)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels, Annotations: annotations},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip},
				{Type: corev1.NodeHostName, Address: s.Name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:            "amd64",
				OperatingSystem:         "linux",
				OSImage:                 "Debian GNU/Linux 13 (trixie)",
				KernelVersion:           "6.12.0-kwok",
				ContainerRuntimeVersion: "containerd://2.1.4",
				KubeletVersion:          KubeletVersion,
			},
			Phase: corev1.NodeRunning,
		},
	}, nil
}

// vtepMAC derives a stable, locally administered MAC address from the name.
func vtepMAC(name string) string {
	h := sha256.Sum256([]byte(name))
	return net.HardwareAddr{(h[0] | 0x02) &^ 0x01, h[1], h[2], h[3], h[4], h[5]}.String()
}
